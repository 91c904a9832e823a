"""Pure delivery rules of the outbox: what a peer's answer means and when to try again.

No I/O here: the sender (``nf.notify.outbox``) asks these functions and acts on the answer.
"""

from __future__ import annotations

import random
from enum import StrEnum

from nf.config import NotifySettings


class Outcome(StrEnum):
    SENT = "sent"  # 2xx: delivered
    GONE = "gone"  # 404: the resource no longer exists at the peer; end it locally
    RETRY = "retry"  # transport error, timeout, 5xx, 408, 429: try again later
    DEAD = "dead"  # a permanent refusal (other 4xx), or out of attempts


def classify(status: int | None) -> Outcome:
    """What an HTTP status (None: no answer at all) means for a notification."""
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SENT
    if status == 404:
        return Outcome.GONE
    if status in (408, 425, 429) or status >= 500:
        return Outcome.RETRY
    # 3xx are not followed (the peer's notification URI is authoritative); other 4xx mean
    # the peer will never accept this body: retrying cannot help.
    return Outcome.DEAD


def backoff_s(attempts: int, cfg: NotifySettings, rng: random.Random) -> float:
    """Delay before the next try after ``attempts`` failed ones (>= 1): exponential with
    "equal jitter" (half fixed, half random), capped at ``max_backoff_s``."""
    base = min(cfg.max_backoff_s, cfg.initial_backoff_s * (2 ** max(0, attempts - 1)))
    return float(base / 2 + rng.uniform(0, base / 2))


def after_failure(attempts_before: int, cfg: NotifySettings) -> Outcome:
    """RETRY, or DEAD once this failure used up ``max_attempts``."""
    return Outcome.DEAD if attempts_before + 1 >= cfg.max_attempts else Outcome.RETRY
