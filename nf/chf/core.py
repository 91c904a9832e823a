"""The CHF's decisions, as plain functions over data (no I/O, no clock, no logging).

The shell (``nf.chf.service``) loads the charging session, asks ``check_sequence`` what to
do with the request, builds the ledger steps with ``charge_steps``, runs them, and turns the
ledger's outcomes into the answer, the new per-rating-group state and the EDR detail with
``decide``. Counter changes become notifications with ``reauthorization_targets`` /
``abort_targets``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from nf.edr.records import UnitRecord
from nf.ledger import roaming
from nf.ledger.port import (
    CapAction,
    ChargeOutcome,
    ChargeResult,
    ChargeStep,
    CounterChange,
    SubscriberStatus,
    SubscriberView,
)
from nf.notify.port import Client


@dataclass(frozen=True)
class Terms:
    """The charging settings of the host network that asks (``HostNetwork``)."""

    network_id: str
    default_grant_bytes: int
    validity_time_s: int
    volume_quota_threshold_pct: int
    quota_holding_time_s: int


@dataclass(frozen=True)
class RgState:
    """What the SMF was last told for one rating group."""

    refused: bool = False  # no quota granted (limit reached, denied, not rated)
    final: bool = False  # a final unit indication was sent

    @property
    def needs_reauthorization(self) -> bool:
        return self.refused or self.final


@dataclass(frozen=True)
class Reply:
    """A cached answer, replayed to a retransmission."""

    status: int
    body: Mapping[str, object] | None


@dataclass(frozen=True)
class StepKey:
    """One charging step: the session (its ``ChargingDataRef``) and the request's
    invocation sequence number. Everything that names the step comes from this one key,
    so no two can disagree: the ledger steps (``ChargeStep.sequence``, kept per rating
    group as the wallet's sequence records), the session's note on the wallet (``i``, with
    the answer ``r`` that a retransmission gets again, laid over the session's
    ``isn``/``reply`` by ``nf.chf.store.with_note``), and the step's EDR (its ``_id``, also
    the id of its pending entry, so a retry lands on the same record)."""

    ref: str
    isn: int

    @property
    def record_id(self) -> str:
        """The EDR's ``_id`` (the format of every stored EDR): ``<ref>:<isn>``."""
        return f"{self.ref}:{self.isn}"


@dataclass(frozen=True)
class Session:
    """One charging session (a ``ChargingDataRef``)."""

    ref: str
    supi: str
    gpsi: str | None
    brand: str
    home_network: str
    home_plmn: str
    host_network: str  # the host network whose SMF holds the session
    serving_plmn: str
    roaming: bool
    notify_uri: str | None
    final_action: str  # "TERMINATE" or "REDIRECT", per brand
    topup_url: str | None
    validity_time_s: int
    last_isn: int
    reply: Reply | None
    rgs: Mapping[int, RgState] = field(default_factory=dict)
    expires_at: datetime | None = None
    open: bool = True
    # The sequence number of the session's note on the subscriber's wallet, as last seen
    # (None: it has none); a warm update writes only if the wallet still holds that note.
    note_isn: int | None = None
    # Where the session's requests come from: "sbi" (Nchf) or "gy" (Diameter); EDRs say it.
    interface: str = "sbi"
    # The Diameter client that opened it (Gy), kept with the session's create only.
    client: Client | None = None


@dataclass(frozen=True)
class UnitRequest:
    """One rating group of a request: what is reported used and what is asked for."""

    rating_group: int
    requested: int | None  # None: not asking for quota (reporting only)
    used_ul: int = 0
    used_dl: int = 0
    used_total: int = 0
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnitAnswer:
    rating_group: int
    result: str
    granted: int | None = None
    validity_time_s: int | None = None
    volume_quota_threshold: int | None = None
    quota_holding_time_s: int | None = None
    final_action: str | None = None
    redirect_url: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A whole-request refusal, carried in ``invocationResult``."""

    status: int
    cause: str
    title: str
    detail: str


@dataclass(frozen=True)
class Answer:
    status: int
    invocation_sequence_number: int
    units: tuple[UnitAnswer, ...] = ()
    refusal: Refusal | None = None

    @property
    def result(self) -> str:
        """The EDR's overall result: the refusal's cause, else the worst unit result."""
        if self.refusal is not None:
            return self.refusal.cause
        for u in self.units:
            if u.result != "SUCCESS":
                return u.result
        return "SUCCESS"


class Sequencing(StrEnum):
    PROCEED = "proceed"
    REPLAY = "replay"  # same invocationSequenceNumber: answer again, change nothing
    REJECT = "reject"  # the sequence number went backwards


def check_sequence(session: Session, isn: int) -> Sequencing:
    if isn == session.last_isn:
        return Sequencing.REPLAY
    if isn < session.last_isn:
        return Sequencing.REJECT
    return Sequencing.PROCEED


def charging_data_ref(supi: str, consumer: str, charging_id: int | None,
                      pdu_session_id: int | None, invocation_time: str) -> str:
    """The reference of a new session, derived from what identifies the create request, so a
    retransmitted create lands on the same session (and the same ledger sequence records)."""
    key = f"{supi}|{consumer}|{charging_id}|{pdu_session_id}|{invocation_time}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def is_roaming(serving_plmn: str, home_plmns: Sequence[str]) -> bool:
    return roaming.is_roaming(serving_plmn, home_plmns)


def requested_bytes(u: UnitRequest, terms: Terms) -> int:
    """How much to ask the ledger for: what the SMF asked, bounded by the network's grant
    size; the network's grant size when it asked without a volume."""
    if u.requested is None:
        return 0
    if u.requested <= 0:
        return terms.default_grant_bytes
    return min(u.requested, terms.default_grant_bytes)


def charge_steps(session: Session, isn: int, units: Sequence[UnitRequest], terms: Terms,
                 now: datetime, grace_s: int, *, closing: bool = False) -> list[ChargeStep]:
    """One ledger step per rating group, all keyed by ``StepKey(session.ref, isn)``;
    ``closing`` (release) asks for nothing more."""
    key = StepKey(session.ref, isn)
    expires = now + timedelta(seconds=terms.validity_time_s + grace_s)
    return [ChargeStep(
        supi=session.supi, session_id=key.ref, rating_group=u.rating_group,
        serving_plmn=session.serving_plmn, used_bytes=u.used_total,
        requested_bytes=0 if closing else requested_bytes(u, terms),
        sequence=key.isn, reservation_expires_at=expires, now=now) for u in units]


def _final_action(session: Session) -> tuple[str, str | None]:
    if session.final_action == "REDIRECT" and session.topup_url:
        return "REDIRECT", session.topup_url
    return "TERMINATE", None


def unit_answer(session: Session, u: UnitRequest, outcome: ChargeOutcome, terms: Terms,
                asked: bool) -> tuple[UnitAnswer, RgState]:
    """The answer for one rating group, and what to remember about it."""
    result = outcome.result
    if result is ChargeResult.SUCCESS:
        if not asked:
            return UnitAnswer(u.rating_group, result.value), RgState()
        granted = outcome.granted_bytes
        action: str | None = None
        url: str | None = None
        # A blocking plan's last grant before the cap carries the final unit indication;
        # a throttling plan keeps granting (the policy side slows the session instead).
        if outcome.final and outcome.cap_action is CapAction.BLOCK:
            action, url = _final_action(session)
        threshold = (granted * terms.volume_quota_threshold_pct // 100
                     if terms.volume_quota_threshold_pct and granted else None)
        return (UnitAnswer(u.rating_group, result.value, granted=granted,
                           validity_time_s=terms.validity_time_s,
                           volume_quota_threshold=threshold,
                           quota_holding_time_s=terms.quota_holding_time_s or None,
                           final_action=action, redirect_url=url),
                RgState(refused=granted == 0, final=action is not None))
    if result is ChargeResult.QUOTA_LIMIT_REACHED:
        action, url = _final_action(session)
        return (UnitAnswer(u.rating_group, result.value, final_action=action,
                           redirect_url=url),
                RgState(refused=True, final=True))
    return UnitAnswer(u.rating_group, result.value), RgState(refused=True)


def unit_record(u: UnitRequest, outcome: ChargeOutcome, answer: UnitAnswer) -> UnitRecord:
    return UnitRecord(
        rating_group=u.rating_group, used_ul=u.used_ul, used_dl=u.used_dl,
        used_total=u.used_total, granted=answer.granted or 0, result=answer.result,
        debited=tuple((p.bucket_id, p.bytes) for p in outcome.committed),
        overage=outcome.overage_bytes, final=answer.final_action is not None,
        throttled=outcome.throttled, triggers=u.triggers)


@dataclass(frozen=True)
class Decision:
    answer: Answer
    session: Session  # the session after this request
    records: tuple[UnitRecord, ...]


def decide(session: Session, isn: int, units: Sequence[UnitRequest],
           outcomes: Sequence[ChargeOutcome], terms: Terms, *, status: int,
           closing: bool = False) -> Decision:
    """Turn the ledger's outcomes (one per unit, same order) into the answer and state."""
    answers: list[UnitAnswer] = []
    records: list[UnitRecord] = []
    rgs = dict(session.rgs)
    for u, o in zip(units, outcomes, strict=True):
        a, st = unit_answer(session, u, o, terms, asked=u.requested is not None and not closing)
        if u.requested is not None or st.refused:
            rgs[u.rating_group] = st
        answers.append(a)
        records.append(unit_record(u, o, a))
    answer = Answer(status, isn, tuple(answers) if not closing else ())
    new = replace(session, last_isn=isn, rgs=rgs, open=not closing,
                  reply=Reply(status, None))
    return Decision(answer, new, tuple(records))


def refuse_subscriber(view: SubscriberView | None, isn: int,
                      units: Sequence[UnitRequest]) -> Answer | None:
    """Whole-request refusals at create: unknown or barred subscriber."""
    if view is None:
        return Answer(404, isn, tuple(UnitAnswer(u.rating_group, "USER_UNKNOWN")
                                      for u in units),
                      Refusal(404, "USER_UNKNOWN", "Not found",
                              "the subscriber is not known to this CHF"))
    if view.status is not SubscriberStatus.ACTIVE:
        return Answer(403, isn, tuple(UnitAnswer(u.rating_group, "END_USER_SERVICE_DENIED")
                                      for u in units),
                      Refusal(403, "END_USER_REQUEST_DENIED", "Forbidden",
                              f"the subscriber is {view.status.value}"))
    return None


def supervision_deadline(now: datetime, validity_time_s: int) -> datetime:
    """A session not heard of for twice its validity time is closed by the CHF."""
    return now + timedelta(seconds=2 * validity_time_s)


def reauthorization_targets(change: CounterChange, sessions: Sequence[Session]
                            ) -> list[tuple[Session, list[int]]]:
    """Sessions to re-authorise after quota became available, with their rating groups."""
    if not change.quota_restored or change.status is not SubscriberStatus.ACTIVE:
        return []
    out = []
    for s in sessions:
        rgs = sorted(rg for rg, st in s.rgs.items() if st.needs_reauthorization)
        if rgs and s.notify_uri and s.open:
            out.append((s, rgs))
    return out


def left_active(change: CounterChange) -> bool:
    """The subscriber has just been blocked or suspended (care, fraud protection)."""
    return change.status is not SubscriberStatus.ACTIVE and \
        change.status_before is SubscriberStatus.ACTIVE


def abort_targets(change: CounterChange, sessions: Sequence[Session]) -> list[Session]:
    """Sessions to abort: the subscriber has just been blocked or suspended."""
    if left_active(change):
        return [s for s in sessions if s.open and s.notify_uri]
    return []
