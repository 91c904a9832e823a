"""The CHF: Nchf_ConvergedCharging v3 online data charging (TS 32.291) for the host
networks' SMFs.

Owns the charging sessions (collection ``charging_sessions``), the quota decisions per
rating group (``core``, pure), the HTTP handlers (``http``), the async shell (``service``)
and the CHF -> SMF notifications (REAUTHORIZATION, ABORT_CHARGING). It never touches
balances except through ``nf.ledger.port.Ledger``, never answers a retransmission by
charging again, and never sends a notification except through the persisted outbox.
"""
