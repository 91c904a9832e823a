"""Event Detail Records: one document per charging and policy event, for reporting and for
reconciling against the host networks' wholesale usage."""
