"""Offer models, as product managers write them in the per-brand YAML files.

Volumes in the files are in MiB (``*_mb``, 1 MiB = 1,048,576 bytes) because nobody reads
byte counts; the ``*_bytes`` properties give the ledger's unit. Speeds are kbit/s, prices
in minor currency units (cents). Every offer has an ``id`` (unique across all brands) and a
``version``: changing an offer's terms means a new version; subscriptions keep the terms of
the version they bought.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIB = 1024 * 1024
# Sanity bounds: a file with a 10 PB add-on is a typo, not an offer.
MAX_MB = 100 * 1024 * 1024  # 100 TiB
MAX_KBPS = 100_000_000  # 100 Gbit/s
MAX_DAYS = 3660
MAX_HOURS = 24 * MAX_DAYS

OfferId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
PlmnId = Annotated[str, Field(pattern=r"^[0-9]{5,6}$")]
UsagePct = Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(max_length=10)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpeedSpec(_Strict):
    uplink_kbps: int = Field(ge=1, le=MAX_KBPS)
    downlink_kbps: int = Field(ge=1, le=MAX_KBPS)


class AtCap(_Strict):
    """What happens when the full-speed allowance is used up."""

    action: Literal["throttle", "block"]
    throttle_speed: SpeedSpec | None = None

    @model_validator(mode="after")
    def _speed_iff_throttle(self) -> AtCap:
        if self.action == "throttle" and self.throttle_speed is None:
            raise ValueError("action 'throttle' needs throttle_speed")
        if self.action == "block" and self.throttle_speed is not None:
            raise ValueError("action 'block' takes no throttle_speed")
        return self


class RoamingRule(_Strict):
    """Roaming without a valid pass: refused (default) or charged to the home allowance."""

    allowed_without_pass: bool = False


class _OfferBase(_Strict):
    id: OfferId
    version: int = Field(ge=1, le=1_000_000)
    name: str = Field(min_length=1, max_length=120)
    price_cents: int = Field(0, ge=0, le=100_000_000)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")

    def terms_hash(self) -> str:
        """A digest of the offer's terms: same id+version must mean the same terms."""
        # Notice settings are not terms: changing them needs no new version.
        raw = json.dumps(self.model_dump(mode="json", exclude={"notify_usage_pct"}),
                         sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


class _Recurring(_OfferBase):
    period_days: int = Field(30, ge=1, le=MAX_DAYS)
    speed: SpeedSpec
    at_cap: AtCap
    rollover: bool = False
    # Rollover carries at most this much unused allowance into the next period.
    rollover_max_mb: int | None = Field(None, ge=0, le=MAX_MB)
    roaming: RoamingRule = RoamingRule()
    # Usage notices at these percentages of the allowance (None: the brand's).
    notify_usage_pct: UsagePct | None = None


class BasePlan(_Recurring):
    """A recurring plan: allowance at full speed per period, then throttle or block.

    "Unlimited" plans are base plans with ``at_cap.action: throttle``.
    """

    kind: Literal["plan"]
    allowance_mb: int = Field(ge=0, le=MAX_MB)

    @property
    def allowance_bytes(self) -> int:
        return self.allowance_mb * MIB


class AddOn(_OfferBase):
    """One-off quota for a duration, optionally for some rating groups only."""

    kind: Literal["addon"]
    quota_mb: int = Field(ge=1, le=MAX_MB)
    duration_hours: int = Field(ge=1, le=MAX_HOURS)
    stackable: bool = True
    rating_groups: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] | None = Field(
        None, min_length=1, max_length=64)

    @property
    def quota_bytes(self) -> int:
        return self.quota_mb * MIB


class RoamingPass(_OfferBase):
    """Quota valid only while served by a network of the zone."""

    kind: Literal["roaming_pass"]
    quota_mb: int = Field(ge=1, le=MAX_MB)
    duration_hours: int = Field(ge=1, le=MAX_HOURS)
    zone_name: str = Field(min_length=1, max_length=60)
    zone: list[PlmnId] = Field(min_length=1, max_length=500)

    @property
    def quota_bytes(self) -> int:
        return self.quota_mb * MIB


class SpeedBoost(_OfferBase):
    """A higher session speed for a while."""

    kind: Literal["speed_boost"]
    speed: SpeedSpec
    duration_hours: int = Field(ge=1, le=MAX_HOURS)


class FamilyPlan(_Recurring):
    """One shared pool per period for a group, with optional per-member caps."""

    kind: Literal["family_plan"]
    pool_mb: int = Field(ge=1, le=MAX_MB)
    max_members: int = Field(5, ge=1, le=20)
    # Default cap per member on what they may draw from the pool per period (None: no cap).
    member_cap_mb: int | None = Field(None, ge=0, le=MAX_MB)

    @property
    def pool_bytes(self) -> int:
        return self.pool_mb * MIB


Offer = Annotated[
    BasePlan | AddOn | RoamingPass | SpeedBoost | FamilyPlan, Field(discriminator="kind")
]


class Brand(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
    name: str = Field(min_length=1, max_length=80)
    topup_url: str | None = Field(None, pattern=r"^https?://\S+$", max_length=500)
    # At a blocking cap, the SMF is told to TERMINATE or to REDIRECT to ``topup_url``.
    block_final_unit_action: Literal["TERMINATE", "REDIRECT"] = "TERMINATE"
    # Default usage-notice percentages of the brand's plans and pools.
    notify_usage_pct: UsagePct = Field(default_factory=lambda: [50, 80, 100])

    @model_validator(mode="after")
    def _redirect_needs_url(self) -> Brand:
        if self.block_final_unit_action == "REDIRECT" and not self.topup_url:
            raise ValueError("block_final_unit_action REDIRECT needs topup_url")
        return self


class BrandFile(_Strict):
    """One brand's file: its settings and its offers."""

    brand: Brand
    offers: list[Offer] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _unique_ids(self) -> BrandFile:
        seen: set[str] = set()
        for o in self.offers:
            if o.id in seen:
                raise ValueError(f"offer id {o.id!r} appears more than once")
            seen.add(o.id)
        return self


AnyOffer = BasePlan | AddOn | RoamingPass | SpeedBoost | FamilyPlan


class Catalog:
    """Every brand and offer, immutable once built. Offer ids are unique across brands."""

    def __init__(self, brands: dict[str, Brand], offers: dict[str, tuple[str, AnyOffer]]
                 ) -> None:
        self._brands = dict(brands)
        self._offers = dict(offers)  # offer id -> (brand id, offer)

    @property
    def brands(self) -> dict[str, Brand]:
        return dict(self._brands)

    def brand(self, brand_id: str) -> Brand | None:
        return self._brands.get(brand_id)

    def offer(self, offer_id: str) -> tuple[str, AnyOffer] | None:
        """(brand id, offer) or None."""
        return self._offers.get(offer_id)

    def offers_of(self, brand_id: str) -> list[AnyOffer]:
        return [o for b, o in self._offers.values() if b == brand_id]

    def __iter__(self) -> Iterator[tuple[str, AnyOffer]]:
        return iter(self._offers.values())

    def __len__(self) -> int:
        return len(self._offers)
