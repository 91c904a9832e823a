"""The balance manager: subscribers' buckets, reservations, purchases, renewals, expiry.

Owns the ledger port (``port``), the pure decisions (``core`` over ``state``), and the
MongoDB adapter (``mongo``, ``codec``) with its sweepers (``part``). Every grant decision
is made by ``core``; the adapter only loads, writes conditionally and retries. Never grants
beyond a bucket, never debits a retried step twice, never uses multi-document transactions.
"""
