"""HTTP/2 service plumbing shared by every service: the app assembly (``app``), the server
runners, and the toolkit the slices' handlers are written with (ProblemDetails, request
parsing with limits, the direct router, admission). No charging or policy logic; the
metrics live in ``nf.metrics``, the parts of the NF in ``nf.wiring``."""
