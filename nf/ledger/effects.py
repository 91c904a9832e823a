"""Counter changes as durable effects of ledger writes (see ``nf.effects``).

Every ledger write that changes a subscriber's policy counters, speed or status carries the
``CounterChange``s in the wallet document's pending entries; ``counter_drain`` delivers them
to every ``CounterListener`` of the runtime (the PCF, the spending-limit subscriptions, the
CHF, and whatever else is added) and acknowledges them once all listeners returned.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nf import logs
from nf.clock import utc
from nf.effects import Drain
from nf.errors import NfError
from nf.ledger.port import (
    CapState,
    CounterChange,
    PolicyCounters,
    PurchaseMark,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
    UsageMark,
)
from nf.runtime import Runtime
from nf.store.mongo import Doc

log = logging.getLogger("nf.ledger")

WALLETS = "ledger_wallets"
_KNOWN = {"supi", "before", "after", "speed", "status", "status_before", "quota_restored"}
# Marks that travel with a change (subscriber notices): stored as plain sub-documents.
_MARKS: dict[str, type[Any]] = {"usage": UsageMark, "purchase": PurchaseMark}


def _counters(p: PolicyCounters) -> list[str]:
    return [p.data_cap.value, p.roaming.value]


def _counters_from(v: list[str]) -> PolicyCounters:
    return PolicyCounters(CapState(v[0]), RoamingState(v[1]))


def change_doc(c: CounterChange) -> Doc:
    """A counter change as stored in a pending entry. Fields added to ``CounterChange``
    later are kept as they are when they are plain values (numbers, strings, lists)."""
    d: Doc = {"supi": c.supi, "before": _counters(c.before), "after": _counters(c.after),
              "speed": [c.speed.speed.uplink_kbps, c.speed.speed.downlink_kbps,
                        c.speed.reason, c.speed.boost_ends_at],
              "status": c.status.value, "status_before": c.status_before.value,
              "quota_restored": c.quota_restored}
    for f in dataclasses.fields(CounterChange):
        if f.name in _MARKS:
            v = getattr(c, f.name)
            d[f.name] = None if v is None else {
                k: list(x) if isinstance(x, tuple) else x
                for k, x in dataclasses.asdict(v).items()}
        elif f.name not in _KNOWN:
            v = getattr(c, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
    return d


def _mark_from(kind: type[Any], v: Doc | None) -> Any:
    if v is None:
        return None
    out: dict[str, Any] = {}
    for k, x in v.items():
        if isinstance(x, list):
            x = tuple(x)
        elif isinstance(x, datetime):
            x = utc(x)
        out[k] = x
    return kind(**out)


def change_from(d: Doc) -> CounterChange:
    sp = d["speed"]
    extra: dict[str, Any] = {}
    for f in dataclasses.fields(CounterChange):
        if f.name in _MARKS and f.name in d:
            extra[f.name] = _mark_from(_MARKS[f.name], d[f.name])
        elif f.name not in _KNOWN and f.name in d:
            v = d[f.name]
            extra[f.name] = tuple(v) if isinstance(v, list) else v
    ends: datetime | None = utc(sp[3]) if sp[3] is not None else None
    return CounterChange(
        supi=d["supi"], before=_counters_from(d["before"]), after=_counters_from(d["after"]),
        speed=SpeedView(Speed(int(sp[0]), int(sp[1])), str(sp[2]), boost_ends_at=ends),
        status=SubscriberStatus(d["status"]),
        status_before=SubscriberStatus(d["status_before"]),
        quota_restored=bool(d["quota_restored"]), **extra)


def counter_drain(rt: Runtime) -> Drain[CounterChange]:
    """The drain that tells ``rt.counter_listeners`` about counter changes, durably."""

    async def deliver(changes: Sequence[CounterChange]) -> None:
        failed: NfError | None = None
        for listener in rt.counter_listeners:
            try:
                await listener.counters_changed(changes)
            except NfError as e:  # the others are still told; all are told again later
                failed = e
                logs.log(log, logging.WARNING, "counter listener failed",
                         listener=type(listener).__name__, cause=e.cause, detail=e.detail,
                         changes=len(changes))
        if failed is not None:
            raise failed

    return Drain(rt, WALLETS, "counter_changes", decode=change_from, deliver=deliver)
