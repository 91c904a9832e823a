"""Notices to subscribers: usage thresholds, cap reached, speed or data back, purchases,
expiry reminders, status changes; sent by SMS (SMPP 3.4) and to brand webhooks.

Events come from the ledger's counter changes (the same ones the PCF hears), including the
usage and purchase marks the ledger adds. Each notice has a deterministic key (subscriber,
event, threshold, period) and lives in a persisted outbox (``sub_notices``), so it is sent
once per period across restarts, retries and processes. Pure decisions live in
``events`` (what fires), ``text`` (GSM-7/UCS-2, concatenation), ``templates``, ``quiet``
and ``holder`` (whose claim a restarted sender may take back); ``outbox``, ``smpp`` and
``webhook`` do the I/O. Nothing here changes money or
policy.
"""
