"""The ledger's state as plain, frozen dataclasses: what one balance document holds.

A *wallet* is the unit of atomicity: everything a charge may touch lives in one wallet and
is written with one conditional update. A wallet handed to ``core`` may be *partial*: the
store may leave out reservations and sequence records that the operation cannot touch
(see ``nf.ledger.mongo``); members and buckets are always complete. A subscriber on their
own has a wallet of one member; the members of a family group share the group's wallet,
which also holds the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nf.ledger.port import (
    CapAction,
    ChargeOutcome,
    PolicyCounters,
    Portion,
    Speed,
    SpeedView,
    SubscriberStatus,
)

AFTERCAP = "aftercap"  # portion id of the unlimited, throttled allowance after a THROTTLE cap
POOL = "pool"  # bucket id of a family pool


@dataclass(frozen=True)
class Bucket:
    """Quota that can be drawn: ``0 <= used + reserved <= quota`` always."""

    id: str
    kind: str  # "plan", "addon", "roaming", "pool"
    offer_id: str
    offer_version: int
    quota: int
    valid_from: datetime
    valid_to: datetime | None  # None: lives as long as the plan (renewed in place)
    owner: str | None  # the member's SUPI; None for a family pool
    used: int = 0
    reserved: int = 0
    rating_groups: tuple[int, ...] | None = None  # None: every rating group
    zone: tuple[str, ...] | None = None  # roaming passes: PLMN ids where valid
    zone_name: str | None = None

    @property
    def available(self) -> int:
        return self.quota - self.used - self.reserved

    def valid_at(self, now: datetime) -> bool:
        return self.valid_from <= now and (self.valid_to is None or now < self.valid_to)


@dataclass(frozen=True)
class Terms:
    """A recurring offer's terms, snapshotted when bought (the version is kept)."""

    offer_id: str
    offer_version: int
    kind: str  # "plan" or "family_plan"
    period_days: int
    allowance: int  # bytes per period (the pool, for a family plan)
    speed: Speed
    cap_action: CapAction
    throttle_speed: Speed | None
    rollover: bool = False
    rollover_max: int | None = None
    roaming_allowed: bool = False
    member_cap: int | None = None  # family plans: default per-member cap
    max_members: int = 1


@dataclass(frozen=True)
class Boost:
    offer_id: str
    offer_version: int
    speed: Speed
    valid_from: datetime
    valid_to: datetime


@dataclass(frozen=True)
class Reservation:
    supi: str
    session_id: str
    rating_group: int
    portions: tuple[Portion, ...]
    expires_at: datetime

    @property
    def total(self) -> int:
        return sum(p.bytes for p in self.portions)


@dataclass(frozen=True)
class SeqRecord:
    """Idempotency memory of one (member, session, rating group): the highest step
    sequence applied and its outcome. Kept after the reservation is gone, until the
    session is closed and the retention time has passed."""

    supi: str
    session_id: str
    rating_group: int
    seq: int
    outcome: ChargeOutcome  # stored without counter changes
    at: datetime  # when it was applied
    closed_at: datetime | None = None  # when the session was closed


@dataclass(frozen=True)
class Seen:
    """The view of a member last published, to tell when it changes."""

    counters: PolicyCounters
    speed: SpeedView
    status: SubscriberStatus


@dataclass(frozen=True)
class Member:
    supi: str
    brand: str
    home_network: str
    gpsi: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    plan: Terms | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    cap: int | None = None  # per-period cap on what this member draws from the pool
    pool_used: int = 0  # drawn from the pool this period
    pool_reserved: int = 0
    aftercap_used: int = 0  # throttled usage this period
    aftercap_reserved: int = 0
    overage: int = 0  # usage reported beyond every bucket (lifetime)
    reported: int = 0  # usage reported (lifetime): sum of committed portions + overage
    boosts: tuple[Boost, ...] = ()
    seen: Seen | None = None  # the counters/speed/status last published
    # Set by fraud protection: the member's sessions run at this speed (reason "fraud")
    # until it is lifted (a case resolved as a false positive, or care reinstating them).
    fraud_speed: Speed | None = None


@dataclass(frozen=True)
class Wallet:
    id: str  # the SUPI for a subscriber alone, "grp:<id>" for a family group
    members: tuple[Member, ...]
    buckets: tuple[Bucket, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    seqs: tuple[SeqRecord, ...] = ()
    group_id: str | None = None
    family: Terms | None = None
    family_period_start: datetime | None = None
    family_period_end: datetime | None = None
    owner: str | None = None  # the SUPI that bought the family plan
    version: int = 0  # optimistic concurrency; the store bumps it

    def member(self, supi: str) -> Member | None:
        for m in self.members:
            if m.supi == supi:
                return m
        return None
