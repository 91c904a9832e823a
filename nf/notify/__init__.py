"""The persisted outbox towards peers (SMFs, PCFs): notifications survive restarts, are
retried with backoff, are bounded, and the latest of a coalescing key wins.

Owns the ``outbox`` collection and the HTTP/2 client that talks to peers. It never decides
what to send (the CHF and PCF do) and never sends a notification before it is stored.
``MongoOutbox`` (``nf.notify.outbox``) implements ``nf.notify.port.Outbox`` and is also the
``Part`` whose worker delivers.
"""
