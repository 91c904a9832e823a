"""Roaming and roaming-pass zones, decided in one place for the ledger, the CHF and the PCF.

A subscriber roams when the serving PLMN is not one of their home host network's PLMNs. A
roaming pass covers the PLMNs of its zone, while it is valid and has quota left.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from nf.config import Settings
from nf.ledger.port import BucketView


def home_plmns(settings: Settings, home_network: str, home_plmn: str = "") -> frozenset[str]:
    """The PLMNs where a subscriber of ``home_network`` is at home (``home_plmn``, the
    subscriber's own, included even when the network is not configured)."""
    n = settings.network(home_network)
    plmns = frozenset(n.plmn_ids) if n is not None else frozenset()
    return plmns | {home_plmn} if home_plmn else plmns


def is_roaming(serving_plmn: str | None, home: Collection[str]) -> bool:
    """Whether a session served by ``serving_plmn`` roams (an unknown PLMN is not roaming
    only when there is none at all)."""
    return serving_plmn is not None and serving_plmn not in home


def covers(zone: Collection[str] | None, plmn: str) -> bool:
    """Whether a pass of ``zone`` covers ``plmn``."""
    return zone is not None and plmn in zone


def pass_zones(buckets: Iterable[BucketView], now: datetime) -> frozenset[str]:
    """The PLMNs covered by the passes among ``buckets`` that are valid now and have quota
    not yet used. Quota reserved by a session still counts: that session is using the
    pass, and its policy must not be ended before the quota is spent."""
    zones: set[str] = set()
    for b in buckets:
        if b.kind != "roaming" or b.quota_bytes - b.used_bytes <= 0 or b.valid_from > now \
                or (b.valid_to is not None and b.valid_to <= now):
            continue
        zones.update(b.zone or ())
    return frozenset(zones)
