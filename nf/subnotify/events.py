"""Which notices a counter change fires, and their once-per-period keys. Pure.

A notice's key is ``supi|kind|threshold|period``: the outbox stores each key once, so the
same change heard twice (retries, several processes, at-least-once delivery) sends once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from nf.ledger.port import CapState, CounterChange, RoamingState, SubscriberStatus


class Kind(StrEnum):
    USAGE = "usage"  # a percentage of the plan's full-speed allowance used
    POOL_USAGE = "pool_usage"  # of the family pool, to the group's owner
    CAP_THROTTLED = "cap_throttled"
    CAP_BLOCKED = "cap_blocked"
    CAP_REDIRECTED = "cap_redirected"
    SPEED_RESTORED = "speed_restored"  # a throttled line is back at full speed
    DATA_RESTORED = "data_restored"  # a line blocked (or redirected) at its cap has data
    PLAN_PURCHASED = "plan_purchased"
    ADDON_PURCHASED = "addon_purchased"
    PASS_PURCHASED = "pass_purchased"
    BOOST_PURCHASED = "boost_purchased"
    ADDON_EXPIRING = "addon_expiring"
    ADDON_EXPIRED = "addon_expired"
    PASS_EXPIRING = "pass_expiring"
    PASS_EXPIRED = "pass_expired"
    PASS_ACTIVATED = "pass_activated"  # first use abroad
    ROAMING_EXHAUSTED = "roaming_exhausted"
    SUSPENDED = "suspended"
    BLOCKED = "blocked"
    REACTIVATED = "reactivated"


# Reminders a subscriber may opt out of. Cap and throttle notices are never among them.
MARKETING = frozenset({Kind.ADDON_EXPIRING, Kind.PASS_EXPIRING, Kind.ADDON_EXPIRED,
                       Kind.PASS_EXPIRED})
# Sent at once even in quiet hours; the rest wait for the morning.
URGENT = frozenset({Kind.CAP_THROTTLED, Kind.CAP_BLOCKED, Kind.CAP_REDIRECTED,
                    Kind.SPEED_RESTORED, Kind.DATA_RESTORED, Kind.PLAN_PURCHASED,
                    Kind.ADDON_PURCHASED, Kind.PASS_PURCHASED, Kind.BOOST_PURCHASED,
                    Kind.ROAMING_EXHAUSTED, Kind.PASS_ACTIVATED,
                    Kind.SUSPENDED, Kind.BLOCKED, Kind.REACTIVATED})
_PURCHASE = {"plan": Kind.PLAN_PURCHASED, "addon": Kind.ADDON_PURCHASED,
             "roaming_pass": Kind.PASS_PURCHASED, "speed_boost": Kind.BOOST_PURCHASED}
_EXPIRY = {"addon": (Kind.ADDON_EXPIRING, Kind.ADDON_EXPIRED),
           "roaming_pass": (Kind.PASS_EXPIRING, Kind.PASS_EXPIRED)}


@dataclass(frozen=True)
class Context:
    """What the shell read about the subscriber when the change arrived."""

    supi: str
    brand: str
    period_start: datetime | None  # of the plan (or family pool)
    period_end: datetime | None
    # The add-ons and passes held now: a throttle after a later add-on ran out is a new
    # occurrence in the same period.
    holdings: tuple[str, ...] = ()
    block_action: str = "TERMINATE"  # the brand's final unit action at a blocking cap
    # The line's terms block (or redirect) at the cap rather than throttle: when data
    # comes back, it was not slowed but cut.
    cap_blocks: bool = False


@dataclass(frozen=True)
class Notice:
    key: str
    supi: str  # the recipient
    kind: Kind
    due_at: datetime
    params: dict[str, object] = field(default_factory=dict)
    subject: str = ""  # the subscriber the notice is about (pool notices: a member)

    @property
    def urgent(self) -> bool:
        return self.kind in URGENT

    @property
    def marketing(self) -> bool:
        return self.kind in MARKETING


def _iso(t: datetime | None) -> str:
    return "-" if t is None else t.isoformat(timespec="seconds")


def _epoch(ctx: Context) -> str:
    raw = "|".join(sorted(ctx.holdings))
    return _iso(ctx.period_start) + "#" + hashlib.sha256(raw.encode()).hexdigest()[:10]


def key(supi: str, kind: Kind, threshold: str, period: str) -> str:
    return f"{supi}|{kind.value}|{threshold}|{period}"


def notices_for(c: CounterChange, ctx: Context, now: datetime, expiry_lead: timedelta
                ) -> list[Notice]:
    """The notices one counter change fires, in the order the subscriber should read
    them (the shell filters by template, preference and channel). Usage crossing several
    thresholds at once fires only the highest."""
    out: list[Notice] = []
    s = c.supi
    if c.usage is not None and c.usage.crossed:
        u = c.usage
        pct = u.crossed[-1]
        params: dict[str, object] = {"pct": pct, "used": u.used_after,
                                     "allowance": u.allowance_bytes, "renews": u.period_end}
        if u.scope == "roaming":
            out.append(Notice(key(s, Kind.PASS_ACTIVATED, "-", _iso(u.period_start)), s,
                              Kind.PASS_ACTIVATED, now,
                              {"offer_id": u.offer_id, "quota": u.allowance_bytes,
                               "expires": u.period_end}, subject=s))
        elif u.scope == "pool":
            to = u.owner or s
            out.append(Notice(key(to, Kind.POOL_USAGE, str(pct), _iso(u.period_start)), to,
                              Kind.POOL_USAGE, now, params, subject=s))
        else:
            out.append(Notice(key(s, Kind.USAGE, str(pct), _iso(u.period_start)), s,
                              Kind.USAGE, now, params, subject=s))
    if c.purchase is not None:
        p = c.purchase
        pk = _PURCHASE.get(p.kind)
        info: dict[str, object] = {"offer_id": p.offer_id, "quota": p.quota_bytes,
                                   "expires": p.valid_to}
        if pk is not None:
            out.append(Notice(key(s, pk, "-", p.bucket_id), s, pk, now, info, subject=s))
        ek = _EXPIRY.get(p.kind)
        if ek is not None and p.valid_to is not None:
            soon = p.valid_to - expiry_lead
            if expiry_lead > timedelta(0) and soon > now:
                out.append(Notice(key(s, ek[0], "-", p.bucket_id), s, ek[0], soon, info,
                                  subject=s))
            out.append(Notice(key(s, ek[1], "-", p.bucket_id), s, ek[1], p.valid_to, info,
                              subject=s))
    active = c.status is SubscriberStatus.ACTIVE
    if active and c.before.data_cap is CapState.NORMAL \
            and c.after.data_cap is CapState.EXHAUSTED:
        if c.speed.reason == "throttled":
            kind = Kind.CAP_THROTTLED
        elif ctx.block_action == "REDIRECT":
            kind = Kind.CAP_REDIRECTED
        else:
            kind = Kind.CAP_BLOCKED
        out.append(Notice(key(s, kind, "-", _epoch(ctx)), s, kind, now,
                          {"speed": c.speed.speed.downlink_kbps, "renews": ctx.period_end},
                          subject=s))
    if active and c.status_before is SubscriberStatus.ACTIVE \
            and c.before.data_cap is CapState.EXHAUSTED \
            and c.after.data_cap is CapState.NORMAL:
        back = Kind.DATA_RESTORED if ctx.cap_blocks else Kind.SPEED_RESTORED
        out.append(Notice(key(s, back, "-", _epoch(ctx)), s, back, now,
                          {"speed": c.speed.speed.downlink_kbps}, subject=s))
    if c.before.roaming is RoamingState.AVAILABLE \
            and c.after.roaming is RoamingState.EXHAUSTED:
        out.append(Notice(key(s, Kind.ROAMING_EXHAUSTED, "-", _epoch(ctx)), s,
                          Kind.ROAMING_EXHAUSTED, now, {}, subject=s))
    if c.status != c.status_before:
        st = {SubscriberStatus.SUSPENDED: Kind.SUSPENDED, SubscriberStatus.BLOCKED:
              Kind.BLOCKED, SubscriberStatus.ACTIVE: Kind.REACTIVATED}[c.status]
        out.append(Notice(key(s, st, "-", _epoch(ctx)), s, st, now, {}, subject=s))
    return out


def may_fire(c: CounterChange) -> bool:
    """Cheap test before reading anything: could this change fire a notice?"""
    return (c.usage is not None or c.purchase is not None or c.status != c.status_before
            or c.before.data_cap is not c.after.data_cap
            or (c.before.roaming is RoamingState.AVAILABLE
                and c.after.roaming is RoamingState.EXHAUSTED))
