"""Fraud protection: rules over the stored EDRs, automatic mitigation, and cases for care.

Owns the ``fraud_state`` (per-subscriber rule state, TTL), ``fraud_cases`` and
``fraud_cursor`` (the EDR reader's leased checkpoint) collections. The rules are pure
functions (``nf.fraud.rules``); the reader (``nf.fraud.service``) runs in the background in
one process at a time and acts through the ledger (throttle, suspend) and the counter
listeners, never inside a charging or policy request. Cases are served on the OAM port
(``nf.fraud.http``). It never changes a balance.
"""
