"""Nchf_SpendingLimitControl v1 (TS 29.594): policy counter status for external PCFs.

Owns spending-limit subscriptions (``slc_subscriptions``) and the status-change
notifications sent to their ``notifUri`` through the outbox. The counters themselves are
maintained by the ledger; this package only reports them. It reacts to the same
``CounterChange`` stream as the built-in PCF (one mechanism), and must never modify
balances or policy associations.
"""
