"""Event Detail Records: one document per charging and policy event, for reporting and for
reconciling against the host networks' wholesale usage.

Owns the ``edrs`` collection: the group-commit writer (``nf.edr.writer.EdrWriter``, which
implements ``nf.edr.port.EdrSink`` and is the ``edr`` Part) and the record layout
(``nf.edr.records``). It never decides anything about money or policy and never drops a
record it accepted: a record is acknowledged only once it is stored.
"""
