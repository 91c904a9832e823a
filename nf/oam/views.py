"""JSON renderings of ledger views for the provisioning and care API (camelCase fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nf.catalog.model import AnyOffer
from nf.clock import iso_z
from nf.ledger import core
from nf.ledger.port import BalanceView, SpeedView, SubscriberView
from nf.ledger.state import Member, Wallet

GIB = 1024**3
MIB = 1024**2


def _ts(dt: datetime | None) -> str | None:
    return None if dt is None else iso_z(dt)


def _speed(s: SpeedView) -> dict[str, Any]:
    return {"uplinkKbps": s.speed.uplink_kbps, "downlinkKbps": s.speed.downlink_kbps,
            "reason": s.reason, "boostEndsAt": _ts(s.boost_ends_at)}


def human(n: int) -> str:
    if n >= GIB:
        return f"{n / GIB:.2f} GB"
    return f"{n / MIB:.1f} MB"


def subscriber_json(v: SubscriberView, m: Member) -> dict[str, Any]:
    plan = None
    if m.plan is not None:
        plan = {"offerId": m.plan.offer_id, "offerVersion": m.plan.offer_version,
                "periodStart": _ts(m.period_start), "periodEnd": _ts(m.period_end)}
    return {
        "supi": v.supi, "gpsi": v.gpsi, "brand": v.brand, "homeNetwork": v.home_network,
        "status": v.status.value, "groupId": v.group_id, "plan": plan,
        "counters": {"dataCap": v.counters.data_cap.value,
                     "roaming": v.counters.roaming.value},
        "speed": _speed(v.speed), "capAction": v.cap_action.value,
    }


def balance_json(b: BalanceView, now: datetime) -> dict[str, Any]:
    """What a care agent or the *611# menu shows: every bucket's remaining and expiry."""
    v = b.subscriber
    buckets = [{
        "bucketId": x.bucket_id, "kind": x.kind, "offerId": x.offer_id,
        "offerVersion": x.offer_version, "quotaBytes": x.quota_bytes,
        "usedBytes": x.used_bytes, "reservedBytes": x.reserved_bytes,
        "remainingBytes": max(0, x.remaining_bytes), "validFrom": _ts(x.valid_from),
        "validTo": _ts(x.valid_to),
        "ratingGroups": list(x.rating_groups) if x.rating_groups else None,
        "zone": list(x.zone) if x.zone else None,
    } for x in b.buckets]
    left = sum(max(0, x.remaining_bytes) for x in b.buckets if x.kind != "roaming")
    roam = sum(max(0, x.remaining_bytes) for x in b.buckets if x.kind == "roaming")
    summary = f"{human(left)} left"
    if roam:
        summary += f", roaming {human(roam)}"
    summary += f"; speed {v.speed.speed.downlink_kbps} kbps ({v.speed.reason})"
    return {"supi": v.supi, "brand": v.brand, "status": v.status.value,
            "groupId": v.group_id, "at": _ts(now),
            "counters": {"dataCap": v.counters.data_cap.value,
                         "roaming": v.counters.roaming.value},
            "speed": _speed(v.speed), "buckets": buckets, "summary": summary}


def group_json(g: Wallet, now: datetime) -> dict[str, Any]:
    pool = next((b for b in g.buckets if b.kind == "pool"), None)
    fam = g.family
    return {
        "groupId": g.group_id, "ownerSupi": g.owner,
        "offerId": fam.offer_id if fam else None,
        "offerVersion": fam.offer_version if fam else None,
        "maxMembers": fam.max_members if fam else None,
        "periodEnd": _ts(g.family_period_end),
        "pool": None if pool is None else {
            "quotaBytes": pool.quota, "usedBytes": pool.used,
            "reservedBytes": pool.reserved, "remainingBytes": max(0, pool.available)},
        "members": [{
            "supi": m.supi, "capBytes": m.cap, "usedBytes": m.pool_used,
            "reservedBytes": m.pool_reserved,
            "dataCap": core.counters(g, m, now).data_cap.value} for m in g.members],
    }


def offer_json(o: AnyOffer) -> dict[str, Any]:
    d: dict[str, Any] = o.model_dump(mode="json")
    return {"id": d.pop("id"), "version": d.pop("version"), "kind": d.pop("kind"),
            "name": d.pop("name"), "priceCents": d.pop("price_cents"),
            "currency": d.pop("currency"), "terms": d}
