"""Policy counters as TS 29.594 reports them: pure functions, no I/O.

Counter ids and statuses (the values are operator-defined, TS 29.594 leaves them open):

* ``data-cap``: ``normal`` while full-speed allowance remains, ``exhausted`` after the cap;
* ``roaming``: ``available`` while a valid roaming pass has quota, ``exhausted`` when the
  passes are used up, ``none`` when the subscriber has no valid pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nf.ledger.port import PolicyCounters

DATA_CAP = "data-cap"
ROAMING = "roaming"

_READ: dict[str, Callable[[PolicyCounters], str]] = {
    DATA_CAP: lambda c: c.data_cap.value,
    ROAMING: lambda c: c.roaming.value,
}

COUNTER_IDS: tuple[str, ...] = tuple(_READ)


def unknown_ids(ids: Iterable[str]) -> list[str]:
    return [i for i in ids if i not in _READ]


def status_of(counters: PolicyCounters, counter_id: str) -> str:
    return _READ[counter_id](counters)


def status_infos(counters: PolicyCounters, ids: Sequence[str]) -> dict[str, Any]:
    """The ``statusInfos`` map of a ``SpendingLimitStatus`` for these counters."""
    return {i: {"policyCounterId": i, "currentStatus": status_of(counters, i)} for i in ids}


def changed(before: PolicyCounters, after: PolicyCounters, ids: Sequence[str]) -> list[str]:
    """Which of the subscribed counters changed status."""
    return [i for i in ids if status_of(before, i) != status_of(after, i)]


def spending_limit_status(supi: str, counters: PolicyCounters, ids: Sequence[str], *,
                          notif_id: str | None = None, expiry: str | None = None
                          ) -> dict[str, Any]:
    body: dict[str, Any] = {"supi": supi, "statusInfos": status_infos(counters, ids)}
    if notif_id is not None:
        body["notifId"] = notif_id
    if expiry is not None:
        body["expiry"] = expiry
    return body
