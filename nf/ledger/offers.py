"""Purchases and status changes as pure functions over a wallet."""


from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from nf.catalog.model import AddOn, AnyOffer, BasePlan, FamilyPlan, RoamingPass, SpeedBoost
from nf.errors import Conflict, Unprocessable
from nf.ledger.lifetime import advance
from nf.ledger.port import (
    CapAction,
    CounterChange,
    Speed,
    SubscriberStatus,
)
from nf.ledger.state import (
    Boost,
    Bucket,
    Terms,
    Wallet,
)
from nf.ledger.views import refresh
from nf.ledger.work import Work


def set_status(w: Wallet, supi: str, status: SubscriberStatus, now: datetime
               ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    work = Work(advance(w, now))
    m = work.members[supi]
    # Reinstating a subscriber also lifts a fraud throttle.
    work.members[supi] = replace(m, status=status, fraud_speed=(
        None if status is SubscriberStatus.ACTIVE else m.fraud_speed))
    new = work.freeze()
    return refresh(new, now)


def set_fraud_speed(w: Wallet, supi: str, fraud_speed: Speed | None, now: datetime
                    ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Throttle a member for fraud (``fraud_speed``) or lift it (None)."""
    work = Work(advance(w, now))
    work.members[supi] = replace(work.members[supi], fraud_speed=fraud_speed)
    return refresh(work.freeze(), now)


def plan_terms(o: BasePlan | FamilyPlan) -> Terms:
    thr = o.at_cap.throttle_speed
    return Terms(
        offer_id=o.id, offer_version=o.version, kind=o.kind, period_days=o.period_days,
        allowance=o.allowance_bytes if isinstance(o, BasePlan) else o.pool_bytes,
        speed=Speed(o.speed.uplink_kbps, o.speed.downlink_kbps),
        cap_action=CapAction(o.at_cap.action),
        throttle_speed=Speed(thr.uplink_kbps, thr.downlink_kbps) if thr else None,
        rollover=o.rollover,
        rollover_max=None if o.rollover_max_mb is None else o.rollover_max_mb * 1024 * 1024,
        roaming_allowed=o.roaming.allowed_without_pass,
        member_cap=(o.member_cap_mb * 1024 * 1024
                    if isinstance(o, FamilyPlan) and o.member_cap_mb is not None else None),
        max_members=o.max_members if isinstance(o, FamilyPlan) else 1,
    )


def purchase(w: Wallet, supi: str, offer: AnyOffer, now: datetime, bucket_id: str
             ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Add what ``offer`` gives to the member. Family plans are bought with ``new_group``.
    Raises ``Conflict`` for a second non-stackable add-on still running."""
    work = Work(advance(w, now))
    m = work.members[supi]
    if isinstance(offer, BasePlan):
        for b in list(work.buckets.values()):
            if b.kind == "plan" and b.owner == supi and b.valid_to is None:
                if b.reserved:
                    work.buckets[b.id] = replace(b, valid_to=now)
                else:
                    del work.buckets[b.id]
        t = plan_terms(offer)
        work.buckets[bucket_id] = Bucket(
            id=bucket_id, kind="plan", offer_id=offer.id, offer_version=offer.version,
            quota=t.allowance, valid_from=now, valid_to=None, owner=supi)
        work.members[supi] = replace(m, plan=t, period_start=now,
                                     period_end=now + timedelta(days=t.period_days),
                                     aftercap_used=0)
    elif isinstance(offer, AddOn):
        if not offer.stackable and any(
                b.offer_id == offer.id and b.owner == supi and b.valid_at(now)
                and b.quota > b.used for b in work.buckets.values()):
            raise Conflict(f"offer {offer.id} is not stackable and one is still running")
        work.buckets[bucket_id] = Bucket(
            id=bucket_id, kind="addon", offer_id=offer.id, offer_version=offer.version,
            quota=offer.quota_bytes, valid_from=now,
            valid_to=now + timedelta(hours=offer.duration_hours), owner=supi,
            rating_groups=tuple(offer.rating_groups) if offer.rating_groups else None)
    elif isinstance(offer, RoamingPass):
        work.buckets[bucket_id] = Bucket(
            id=bucket_id, kind="roaming", offer_id=offer.id, offer_version=offer.version,
            quota=offer.quota_bytes, valid_from=now,
            valid_to=now + timedelta(hours=offer.duration_hours), owner=supi,
            zone=tuple(offer.zone), zone_name=offer.zone_name)
    elif isinstance(offer, SpeedBoost):
        span = timedelta(hours=offer.duration_hours)
        running = [b for b in m.boosts if b.offer_id == offer.id and b.valid_to > now]
        others = tuple(b for b in m.boosts if b not in running)
        start = now
        end = max((b.valid_to for b in running), default=now) + span
        if running:
            start = min(b.valid_from for b in running)
        boost = Boost(offer.id, offer.version,
                      Speed(offer.speed.uplink_kbps, offer.speed.downlink_kbps), start, end)
        work.members[supi] = replace(m, boosts=(*others, boost))
    else:
        raise Unprocessable(f"offer {offer.id} is a family plan: create a family group")
    new = work.freeze()
    return refresh(new, now)
