"""What the CHF, the PCF and the provisioning API may ask of the ledger.

This module is the contract between the ledger (``nf.ledger``) and its users. It holds
only plain data and a ``Protocol``; the MongoDB adapter implements it.

Units: volumes in bytes, speeds in kbit/s, times as aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class SubscriberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    BLOCKED = "blocked"


class CapAction(StrEnum):
    """What a plan does when its data allowance is used up."""

    THROTTLE = "throttle"
    BLOCK = "block"


class CapState(StrEnum):
    """Policy counter: the data cap (full-speed allowance) of the subscriber."""

    NORMAL = "normal"
    EXHAUSTED = "exhausted"


class RoamingState(StrEnum):
    """Policy counter: roaming allowance (roaming passes)."""

    NONE = "none"  # no roaming pass bought / none valid now
    AVAILABLE = "available"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class Speed:
    """A session AMBR. Rendered on the wire as e.g. ``"128 Kbps"``."""

    uplink_kbps: int
    downlink_kbps: int


@dataclass(frozen=True)
class PolicyCounters:
    """The status the policy side reacts to (TS 29.594 policy counters)."""

    data_cap: CapState
    roaming: RoamingState


@dataclass(frozen=True)
class SpeedView:
    """The speed a subscriber's sessions should run at now, and why."""

    speed: Speed
    reason: str  # "plan", "boost", "throttled", "roaming-pass", "blocked", "fraud"
    boost_ends_at: datetime | None = None


@dataclass(frozen=True)
class UsageMark:
    """A usage threshold crossed by one charge: the full-speed allowance of the member's
    plan (``scope="plan"``) or of the family pool (``scope="pool"``), used before and after
    in this period; only emitted when a percentage in ``crossed`` was passed. Or the first
    use of a roaming pass (``scope="roaming"``, the pass's quota and validity)."""

    scope: str  # "plan", "pool" or "roaming" (a pass's first use; crossed == (0,))
    allowance_bytes: int
    used_before: int
    used_after: int
    period_start: datetime
    period_end: datetime | None
    crossed: tuple[int, ...]  # percentages passed by this charge, ascending
    owner: str | None = None  # the family group's owner (pool marks)
    offer_id: str | None = None  # the pass (roaming marks)


@dataclass(frozen=True)
class PurchaseMark:
    """What a purchase added: one bucket (add-on, pass) or boost or plan."""

    offer_id: str
    kind: str  # "plan", "addon", "roaming_pass", "speed_boost", "family_plan"
    bucket_id: str
    quota_bytes: int
    valid_to: datetime | None
    at: datetime
    # The terms it was bought at, for the purchase EDR (``nf.edr.purchases``).
    offer_version: int = 0
    price_cents: int = 0
    currency: str = ""
    zone_name: str | None = None


@dataclass(frozen=True)
class CounterChange:
    """A subscriber whose counters or speed changed because of a ledger operation."""

    supi: str
    before: PolicyCounters
    after: PolicyCounters
    speed: SpeedView
    # Status changes (care blocks a subscriber, fraud) travel the same way.
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    status_before: SubscriberStatus = SubscriberStatus.ACTIVE
    # Quota became available again (purchase, top-up, renewal): sessions refused or given
    # final units should be re-authorised.
    quota_restored: bool = False
    # Subscriber notices: a usage threshold crossed by a charge, an offer bought. Either
    # may come with counters unchanged (``before == after``).
    usage: UsageMark | None = None
    purchase: PurchaseMark | None = None


class ChargeResult(StrEnum):
    """Per rating group outcome; maps onto TS 32.291 ``ResultCode``."""

    SUCCESS = "SUCCESS"
    QUOTA_LIMIT_REACHED = "QUOTA_LIMIT_REACHED"
    END_USER_SERVICE_DENIED = "END_USER_SERVICE_DENIED"
    USER_UNKNOWN = "USER_UNKNOWN"
    RATING_FAILED = "RATING_FAILED"  # roaming with no pass and a plan that blocks roaming


@dataclass(frozen=True)
class ChargeStep:
    """One rating group of one charging request, applied atomically.

    First ``used_bytes`` are committed against what the session holds reserved for this
    rating group (the rest of that reservation is released), then, if
    ``requested_bytes > 0``, a new reservation is made.

    Idempotency: ``sequence`` is the charging request's invocation sequence number,
    increasing per session and rating group. The ledger remembers the highest sequence
    applied per (supi, session_id, rating_group) and its outcome until the session is
    closed and ``ledger.seq_retention_s`` has passed: the same sequence again returns that
    outcome (``replay=True``); an older sequence is a late duplicate and is answered with
    ``replay=True``, nothing granted and nothing changed.
    """

    supi: str
    session_id: str
    rating_group: int
    serving_plmn: str  # MCC+MNC, e.g. "00101"
    used_bytes: int
    requested_bytes: int
    sequence: int
    reservation_expires_at: datetime
    now: datetime


@dataclass(frozen=True)
class Portion:
    bucket_id: str
    bytes: int


@dataclass(frozen=True)
class ChargeOutcome:
    result: ChargeResult
    granted_bytes: int
    final: bool  # no quota after this grant: the SMF gets a final unit indication
    throttled: bool  # granted from the after-cap (throttled) allowance
    cap_action: CapAction | None
    committed: tuple[Portion, ...] = ()  # where the reported usage was debited
    overage_bytes: int = 0  # usage reported beyond what any bucket could take
    reserved: tuple[Portion, ...] = ()  # where the new grant is held
    replay: bool = False  # the step was applied before; nothing changed now
    counter_changes: tuple[CounterChange, ...] = ()


@dataclass(frozen=True)
class SubscriberView:
    """What charging and policy need to know about a subscriber before deciding."""

    supi: str
    gpsi: str | None
    brand: str
    home_network: str  # host network id
    home_plmn: str
    status: SubscriberStatus
    group_id: str | None
    counters: PolicyCounters
    speed: SpeedView
    cap_action: CapAction
    roaming_allowed_without_pass: bool = False
    # At a blocking cap: "TERMINATE" or "REDIRECT" (to ``topup_url``), per brand.
    block_final_unit_action: str = "TERMINATE"
    topup_url: str | None = None


@dataclass(frozen=True)
class BucketView:
    bucket_id: str
    kind: str  # "plan", "addon", "roaming", "pool"
    offer_id: str
    offer_version: int
    quota_bytes: int
    used_bytes: int
    reserved_bytes: int
    valid_from: datetime
    valid_to: datetime | None
    rating_groups: tuple[int, ...] | None
    zone: tuple[str, ...] | None

    @property
    def remaining_bytes(self) -> int:
        return self.quota_bytes - self.used_bytes - self.reserved_bytes


@dataclass(frozen=True)
class BalanceView:
    subscriber: SubscriberView
    buckets: tuple[BucketView, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class NoteWrite(Generic[T]):
    """What the caller decided from a charging step's outcomes, for the ledger to write
    with the step: the caller's note of its session (a plain document the ledger keeps
    verbatim), pending entries for the caller's own drain (the step's EDR), and what the
    caller made of the outcomes (``made``, handed back as it is in ``Noted``)."""

    note: dict[str, Any]
    fx: tuple[dict[str, Any], ...]
    made: T


# The caller's decision on a step's outcomes: a pure function, asked again on every try of
# the write (each try decides from the wallet as it then is).
NoteFn = Callable[[tuple[ChargeOutcome, ...]], NoteWrite[T]]


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """The wallet document that now holds a step's note and pending entries (for their
    drain's ``hand_off``), and what the caller's decision made (from the outcomes
    written)."""

    wallet_id: str
    made: T


@dataclass(frozen=True, slots=True)
class Noted(Generic[T]):
    """A noted charging request: one outcome per step, and what was written (None: the
    subscriber is unknown, nothing was written)."""

    outcomes: tuple[ChargeOutcome, ...]
    written: Written[T] | None = None


class Ledger(Protocol):
    """The balance manager, as seen by charging, policy and care."""

    async def subscriber(self, supi: str, now: datetime) -> SubscriberView | None:
        """The subscriber's status, counters and current speed; None if unknown."""
        ...

    async def supi_of_gpsi(self, gpsi: str) -> str | None:
        """The SUPI of the subscriber whose GPSI (``msisdn-<digits>``) this is; None if no
        subscriber has it."""
        ...

    async def charge(self, step: ChargeStep) -> ChargeOutcome:
        """Commit reported usage and reserve new quota for one rating group, atomically."""
        ...

    async def charge_request(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                             now: datetime, *, close: bool = False
                             ) -> tuple[ChargeOutcome, ...]:
        """Every rating group of one charging request (``steps``, all of ``supi`` and
        ``session_id``) applied as one atomic step, in order; with ``close``, the session
        is then closed in the same write (which also drops the session's note). One
        outcome per step."""
        ...

    async def charge_noted(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                           now: datetime, *, expect_isn: int | None, isn: int,
                           note: NoteFn[T]) -> Noted[T] | None:
        """``charge_request``, with what the caller decides from the outcomes
        (``note(outcomes)``: its note of the session after request ``isn``, and pending
        entries) written by the same update: one write for the whole charging step. Only
        if the wallet's note of the session is at ``expect_isn`` (None: there is none);
        otherwise nothing is written and the answer is None (the caller's copy was
        stale)."""
        ...

    async def read_note(self, supi: str, session_id: str, now: datetime, *,
                        fresh: bool = True) -> dict[str, Any] | None:
        """The note of session ``session_id`` on ``supi``'s wallet, if any; without
        ``fresh``, possibly from this process's copy of the wallet (which a write
        conditioned on the note corrects: ``charge_noted`` answers None)."""
        ...

    async def close_session(self, supi: str, session_id: str, now: datetime) -> tuple[
            CounterChange, ...]:
        """Release every reservation the session still holds (nothing is debited)."""
        ...

    async def balance(self, supi: str, now: datetime) -> BalanceView | None:
        ...


class CounterListener(Protocol):
    """Told after the fact that subscribers' policy counters or speed changed.

    Every listener in ``Runtime.counter_listeners`` is told of every change, durably: the
    ledger writes each change as a pending entry of the same update that caused it, and
    delivers it after the write (``nf.ledger.effects``), again after a crash or when a
    listener raised. Delivery is at least once and not necessarily in order across
    batches: a listener must tolerate a change it has seen before (re-read the current
    state rather than act on ``before``/``after`` alone, or remember what it already did).
    Raising ``nf.errors.NfError`` leaves the whole batch pending; it is delivered again to
    every listener, after ``effects.sweep_grace_s``.
    """

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None: ...
