"""The PCF: Npcf_SMPolicyControl v1 (TS 29.512) for the host networks' SMFs.

Owns SM policy associations (``sm_policies``), the session speed decision (plan, boost,
throttled, roaming) and its real-time push to the SMFs when a subscriber's policy counters
or speed change. Decisions come from the sans-IO core (``core``); the shell (``service``)
reads the ledger, persists and hands notifications to the outbox.

It must never change balances (the ledger and CHF own money), never send HTTP itself (the
outbox does), and never push a decision older than the one the SMF already holds.
"""
