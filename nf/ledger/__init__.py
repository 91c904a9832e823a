"""The balance manager: subscribers' buckets, reservations, purchases, renewals, expiry.

Owns the ledger port (``port``), the pure decisions (``core``, one module per job: ``views``,
``lifetime``, ``charge``, ``offers``, ``family``, over ``state``; ``roaming`` is shared
with the CHF and the PCF), and the MongoDB adapter: ``mongo`` (the one object the wiring
builds), made of a repository (``repo``, with ``copies`` and ``codec``) and functions over
it (``steps``, ``reads``, ``groups``, ``subscribers``, ``fence``), with its sweepers
(``part``) and its durable counter changes (``effects``). Every grant decision is made by
the core; the adapter only loads, writes conditionally and retries. Never grants beyond a
bucket, never debits a retried step twice, never uses multi-document transactions.
"""
