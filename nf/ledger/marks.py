"""Subscriber-notice marks on counter changes: usage thresholds crossed, offers bought.

Pure functions over wallets, called once by the store after the core has decided (one
place in the charge path, one in the purchase path). The notice side (``nf.subnotify``)
reads ``CounterChange.usage`` and ``CounterChange.purchase``; the PCF and the CHF ignore
them. A mark never changes money or policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from nf.catalog.model import AddOn, AnyOffer, RoamingPass, SpeedBoost
from nf.ledger import core
from nf.ledger.port import CounterChange, PurchaseMark, UsageMark
from nf.ledger.state import POOL, Wallet

# offer id -> usage-notice percentages (the offer's, else its brand's; () for none)
PctOf = Callable[[str], Sequence[int]]


def _plan_use(w: Wallet, supi: str) -> tuple[int, int]:
    quota = used = 0
    for b in w.buckets:
        if b.kind == "plan" and b.owner == supi and b.valid_to is None:
            quota += b.quota
            used += b.used
    return quota, used


def _pool_use(w: Wallet) -> tuple[int, int]:
    pool = next((b for b in w.buckets if b.id == POOL), None)
    return (0, 0) if pool is None else (pool.quota, pool.used)


def crossed(pcts: Sequence[int], allowance: int, before: int, after: int) -> tuple[int, ...]:
    """Percentages ``p`` with ``before < p% of allowance <= after``, ascending."""
    if allowance <= 0 or after <= before:
        return ()
    return tuple(sorted(p for p in set(pcts)
                        if before * 100 < p * allowance <= after * 100))


def _first_pass_use(before: Wallet, after: Wallet, supi: str) -> UsageMark | None:
    """A roaming pass drawn from for the first time (activated on first use abroad)."""
    old = {b.id: b for b in before.buckets}
    for b in after.buckets:
        if b.kind == "roaming" and b.owner == supi and b.used > 0:
            was = old.get(b.id)
            if was is not None and was.used == 0:
                return UsageMark("roaming", b.quota, 0, b.used, b.valid_from, b.valid_to,
                                 (0,), offer_id=b.offer_id)
    return None


def usage_mark(before: Wallet, after: Wallet, supi: str, pct_of: PctOf
               ) -> UsageMark | None:
    """The usage threshold ``supi``'s charge crossed, from the wallet before the charge
    to the wallet after it: the member's own plan, else a roaming pass used for the first
    time, else the family pool."""
    m0, m1 = before.member(supi), after.member(supi)
    if m1 is None:
        return None
    if m1.plan is not None and m1.period_start is not None:
        quota, used = _plan_use(after, supi)
        same = m0 is not None and m0.period_start == m1.period_start
        used0 = _plan_use(before, supi)[1] if same else 0
        hit = crossed(pct_of(m1.plan.offer_id), quota, used0, used)
        if hit:
            return UsageMark("plan", quota, used0, used, m1.period_start, m1.period_end, hit)
        return _first_pass_use(before, after, supi)
    first = _first_pass_use(before, after, supi)
    if first is not None:
        return first
    if after.family is not None and after.family_period_start is not None:
        quota, used = _pool_use(after)
        same = before.family_period_start == after.family_period_start
        used0 = _pool_use(before)[1] if same else 0
        hit = crossed(pct_of(after.family.offer_id), quota, used0, used)
        if hit:
            return UsageMark("pool", quota, used0, used, after.family_period_start,
                             after.family_period_end, hit, owner=after.owner)
    return None


def _for(supi: str, changes: tuple[CounterChange, ...], after: Wallet, now: datetime,
         **mark: object) -> tuple[CounterChange, ...]:
    """``changes`` with the mark on ``supi``'s change (one is made, counters unchanged,
    if the operation changed none)."""
    out = list(changes)
    at = next((i for i, c in enumerate(out) if c.supi == supi), None)
    if at is not None:
        out[at] = replace(out[at], **mark)  # type: ignore[arg-type]
        return tuple(out)
    m = after.member(supi)
    if m is None:
        return changes
    seen = core.seen_of(after, m, now)
    out.append(CounterChange(supi=supi, before=seen.counters, after=seen.counters,
                             speed=seen.speed, status=seen.status, status_before=seen.status,
                             **mark))  # type: ignore[arg-type]
    return tuple(out)


def with_usage(before: Wallet, after: Wallet, supi: str, now: datetime,
               changes: tuple[CounterChange, ...], pct_of: PctOf
               ) -> tuple[CounterChange, ...]:
    """The charge path's one hook: ``changes`` plus the usage mark, if a threshold was
    crossed."""
    mark = usage_mark(before, after, supi, pct_of)
    return changes if mark is None else _for(supi, changes, after, now, usage=mark)


def _ends(after: Wallet, supi: str, offer: AnyOffer, now: datetime) -> datetime | None:
    """When what was bought ends: a boost bought while the same boost runs extends it
    (``offers.purchase``), so its end is the running boost's, as the balance shows."""
    if isinstance(offer, SpeedBoost):
        m = after.member(supi)
        running = [] if m is None else [b.valid_to for b in m.boosts
                                        if b.offer_id == offer.id and b.valid_to > now]
        return max(running, default=now + timedelta(hours=offer.duration_hours))
    if isinstance(offer, AddOn | RoamingPass):
        return now + timedelta(hours=offer.duration_hours)
    return None


def with_purchase(after: Wallet, supi: str, offer: AnyOffer, bucket_id: str, now: datetime,
                  changes: tuple[CounterChange, ...]) -> tuple[CounterChange, ...]:
    """The purchase path's one hook: ``changes`` plus what was bought."""
    quota = offer.quota_bytes if isinstance(offer, AddOn | RoamingPass) else 0
    mark = PurchaseMark(offer_id=offer.id, kind=offer.kind, bucket_id=bucket_id,
                        quota_bytes=quota, valid_to=_ends(after, supi, offer, now),
                        at=now, offer_version=offer.version, price_cents=offer.price_cents,
                        currency=offer.currency,
                        zone_name=offer.zone_name if isinstance(offer, RoamingPass) else None)
    return _for(supi, changes, after, now, purchase=mark)
