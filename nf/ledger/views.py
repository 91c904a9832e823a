"""What a member's wallet means now, as pure functions: the buckets a grant may draw from
(in consumption order), the policy counters, the speed, and the counter changes since the
view last published.

Consumption order for a member: a roaming pass whose zone holds the serving network (while
roaming), then add-ons (soonest expiring first, those restricted to the rating group
included), then the member's plan, then the family pool within the member's cap.
"""


from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from nf.ledger.port import (
    CapAction,
    CapState,
    CounterChange,
    PolicyCounters,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
)
from nf.ledger.roaming import covers
from nf.ledger.state import (
    Bucket,
    Member,
    Seen,
    Terms,
    Wallet,
)

# Speed of a member who has quota (add-ons) but no plan at all.
DEFAULT_SPEED = Speed(uplink_kbps=1024, downlink_kbps=1024)

# ---------------------------------------------------------------------------------- views


def terms_of(w: Wallet, m: Member) -> Terms | None:
    """The recurring terms that govern the member's speed and cap: own plan, else family."""
    return m.plan if m.plan is not None else w.family


def blocks_at_cap(terms: Terms | None) -> bool:
    """Whether a member on ``terms`` is blocked at the cap (not throttled)."""
    return terms is None or terms.cap_action is not CapAction.THROTTLE \
        or terms.throttle_speed is None


def _rg_ok(b: Bucket, rg: int | None) -> bool:
    if b.rating_groups is None:
        return True
    return rg is not None and rg in b.rating_groups


def _cap_left(m: Member) -> int | None:
    return None if m.cap is None else max(0, m.cap - m.pool_used - m.pool_reserved)


def home_buckets(w: Wallet, m: Member, now: datetime, rg: int | None) -> list[Bucket]:
    mine = [b for b in w.buckets if b.owner == m.supi and b.valid_at(now) and _rg_ok(b, rg)]
    addons = sorted((b for b in mine if b.kind == "addon"),
                    key=lambda b: (b.valid_to is None, b.valid_to or now, b.id))
    plans = [b for b in mine if b.kind == "plan"]
    pool = [b for b in w.buckets if b.kind == "pool" and b.valid_at(now)
            and w.group_id is not None]
    return addons + plans + pool


def valid_passes(w: Wallet, m: Member, now: datetime, plmn: str) -> list[Bucket]:
    found = [b for b in w.buckets if b.owner == m.supi and b.kind == "roaming"
             and b.valid_at(now) and covers(b.zone, plmn)]
    return sorted(found, key=lambda b: (b.valid_to or now, b.id))


def available(b: Bucket, m: Member) -> int:
    if b.kind == "pool":
        left = _cap_left(m)
        return max(0, b.available if left is None else min(b.available, left))
    return max(0, b.available)


def eligible(w: Wallet, m: Member, now: datetime, rg: int | None, roaming: bool,
             plmn: str) -> tuple[list[Bucket], bool]:
    """Buckets a grant may draw from, in consumption order, and whether the after-cap
    allowance applies. Roaming with no pass and no permission gives ([], False)."""
    terms = terms_of(w, m)
    throttle = terms is not None and terms.cap_action is CapAction.THROTTLE
    if not roaming:
        return home_buckets(w, m, now, rg), throttle
    passes = valid_passes(w, m, now, plmn)
    if terms is not None and terms.roaming_allowed:
        return passes + home_buckets(w, m, now, rg), throttle
    return passes, False


def counters(w: Wallet, m: Member, now: datetime) -> PolicyCounters:
    headroom = 0
    for b in home_buckets(w, m, now, None):
        left = b.quota - b.used
        if b.kind == "pool" and m.cap is not None:
            left = min(left, m.cap - m.pool_used)
        headroom += max(0, left)
    roam = [b for b in w.buckets if b.owner == m.supi and b.kind == "roaming"
            and b.valid_at(now)]
    if not roam:
        rs = RoamingState.NONE
    elif any(b.quota > b.used for b in roam):
        rs = RoamingState.AVAILABLE
    else:
        rs = RoamingState.EXHAUSTED
    return PolicyCounters(
        data_cap=CapState.EXHAUSTED if headroom <= 0 else CapState.NORMAL, roaming=rs)


def speed(w: Wallet, m: Member, now: datetime) -> SpeedView:
    """The session speed the member should have now: blocked, throttled, boost or plan."""
    terms = terms_of(w, m)
    base = terms.speed if terms is not None else DEFAULT_SPEED
    if m.status is not SubscriberStatus.ACTIVE:
        return SpeedView(base, "blocked")
    if m.fraud_speed is not None:
        return SpeedView(m.fraud_speed, "fraud")
    if counters(w, m, now).data_cap is CapState.EXHAUSTED:
        if terms is not None and not blocks_at_cap(terms):
            assert terms.throttle_speed is not None
            return SpeedView(terms.throttle_speed, "throttled")
        return SpeedView(base, "blocked")
    boosts = [b for b in m.boosts if b.valid_from <= now < b.valid_to]
    if boosts:
        best = max(boosts, key=lambda b: (b.speed.downlink_kbps, b.valid_to))
        return SpeedView(best.speed, "boost", boost_ends_at=best.valid_to)
    return SpeedView(base, "plan")


def seen_of(w: Wallet, m: Member, now: datetime) -> Seen:
    return Seen(counters(w, m, now), speed(w, m, now), m.status)


def refresh(w: Wallet, now: datetime) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Counter changes between each member's last published view and their view now;
    the returned wallet remembers the new views."""
    out = []
    members = []
    for m in w.members:
        new = seen_of(w, m, now)
        old = m.seen
        members.append(m if old == new else replace(m, seen=new))
        if old is None or old == new:
            continue
        restored = (
            (old.counters.data_cap is CapState.EXHAUSTED
             and new.counters.data_cap is CapState.NORMAL)
            or (old.counters.roaming is not RoamingState.AVAILABLE
                and new.counters.roaming is RoamingState.AVAILABLE)
            or (old.status is not SubscriberStatus.ACTIVE
                and new.status is SubscriberStatus.ACTIVE))
        out.append(CounterChange(
            supi=m.supi, before=old.counters, after=new.counters, speed=new.speed,
            status=new.status, status_before=old.status, quota_restored=restored))
    return replace(w, members=tuple(members)), tuple(out)
