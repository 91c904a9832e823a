"""The ledger's decisions as pure functions over a ``Wallet``: no I/O, no clock, no logging.

One import for the store and the tests; each job lives in its own module:

- ``views``: buckets eligible for a grant (consumption order), counters, speed, the
  counter changes since the last published view;
- ``lifetime``: what time does (reservations expiring, periods renewing with rollover,
  add-ons, passes and boosts expiring, sequence records forgotten) and when it is due;
- ``charge``: commit usage and reserve quota for one rating group, close a session, and the
  idempotency of retried steps;
- ``offers``: purchases and status changes; ``family``: groups, attach, detach, caps;
- ``work``: the mutable scratch copy those functions share; ``roaming``: roaming and
  pass zones (shared with the CHF and the PCF).

The store loads a wallet, calls one of these and writes the result back with one
conditional update.
"""

from __future__ import annotations

from nf.ledger.charge import (
    charge,
    charge_request,
    close_session,
    find_seq,
    plain_outcome,
    seq_replay,
    session_open,
    sweep,
    unknown_outcome,
)
from nf.ledger.family import attach, detach, new_group, set_cap
from nf.ledger.lifetime import (
    DEFAULT_SEQ_RETENTION,
    MAX_SEQS,
    SEQ_IDLE,
    advance,
    due,
    prune_seqs,
)
from nf.ledger.offers import plan_terms, purchase, set_fraud_speed, set_status
from nf.ledger.views import (
    DEFAULT_SPEED,
    counters,
    eligible,
    refresh,
    seen_of,
    speed,
    terms_of,
    valid_passes,
)

__all__ = [
    "DEFAULT_SEQ_RETENTION", "DEFAULT_SPEED", "MAX_SEQS", "SEQ_IDLE",
    "advance", "attach", "charge", "charge_request", "close_session", "counters", "detach",
    "due", "eligible",
    "find_seq", "new_group", "plain_outcome", "plan_terms", "prune_seqs",
    "purchase", "refresh", "seen_of", "seq_replay", "session_open", "set_cap",
    "set_fraud_speed", "set_status", "speed", "sweep", "terms_of", "unknown_outcome",
    "valid_passes",
]
