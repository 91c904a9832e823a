"""HTTP/2 service plumbing shared by every service: the app factory, ProblemDetails,
request parsing with limits, metrics and the server runners. No charging or policy logic."""
