"""The sans-IO policy core: ``decide(state, event, now) -> (new_state, effects)``.

Plain synchronous functions over data. No database, no HTTP, no logging: the shell
(``nf.pcf.service``) loads the subscriber and the policy, calls ``decide``, then persists the
new state and carries out the effects (push to the SMF, EDR).

A policy's ``version`` counts the decisions the SMF was given. Every new decision bumps it;
the shell stores it with a compare-and-set on the previous version, so of two concurrent
re-evaluations only one wins and a stale decision can never overwrite a newer one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from nf.clock import iso_z
from nf.ledger import roaming
from nf.ledger.port import RoamingState, Speed, SubscriberStatus, SubscriberView

# What the PCF asks the SMF to report (TS 29.512 PolicyControlRequestTrigger).
TRIGGERS: tuple[str, ...] = ("PLMN_CH", "SE_AMBR_CH")
SESS_RULE_ID = "sess-1"
PCC_RULE_ID = "pcc-default"
QOS_ID = "qos-default"


# ---------------------------------------------------------------------------------------
# Bit rates on the wire: "128 Kbps", "50 Mbps" (TS 29.571 BitRate)

_UNITS = (("Tbps", 10**9), ("Gbps", 10**6), ("Mbps", 10**3), ("Kbps", 1))
_RATE = re.compile(r"^(\d+(?:\.\d+)?) (bps|Kbps|Mbps|Gbps|Tbps)$")
_FACTOR_KBPS = {"bps": 0.001, "Kbps": 1, "Mbps": 10**3, "Gbps": 10**6, "Tbps": 10**9}


def format_bitrate(kbps: int) -> str:
    """Kbit/s as a TS 29.571 BitRate string, in the largest unit that keeps it exact."""
    if kbps < 0:
        raise ValueError("a bit rate is never negative")
    if kbps == 0:
        return "0 Kbps"
    for unit, factor in _UNITS:
        if kbps % factor == 0:
            return f"{kbps // factor} {unit}"
    return f"{kbps} Kbps"  # pragma: no cover - factor 1 always divides


def parse_bitrate(text: str) -> int:
    """A BitRate string as whole kbit/s (rounded down); ``ValueError`` if malformed."""
    m = _RATE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a bit rate like '128 Kbps'")
    return int(float(m.group(1)) * _FACTOR_KBPS[m.group(2)])


def ambr(speed: Speed) -> dict[str, str]:
    return {"uplink": format_bitrate(speed.uplink_kbps),
            "downlink": format_bitrate(speed.downlink_kbps)}


# ---------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class DefaultQos:
    five_qi: int
    arp_priority: int


@dataclass(frozen=True)
class Subscriber:
    """What the core needs to know about the subscriber, read by the shell just before."""

    view: SubscriberView
    home_plmns: frozenset[str]  # PLMNs of the subscriber's home host network
    # Visited PLMNs covered by the subscriber's roaming passes valid now with quota left.
    pass_zones: frozenset[str] = frozenset()

    def roaming_at(self, plmn: str | None) -> bool:
        return roaming.is_roaming(plmn, self.home_plmns | {self.view.home_plmn})

    def pass_applies(self, plmn: str) -> bool:
        if self.view.counters.roaming is not RoamingState.AVAILABLE:
            return False
        return roaming.covers(self.pass_zones, plmn)


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY_UNKNOWN = "user-unknown"
    DENY_STATUS = "suspended-or-blocked"
    DENY_ROAMING = "roaming-not-allowed"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    speed: Speed | None = None
    reason: str = ""
    roaming: bool = False
    recheck_at: datetime | None = None
    detail: str = ""


def judge(sub: Subscriber | None, serving_plmn: str | None, now: datetime) -> Judgement:
    """May this subscriber have a session on ``serving_plmn`` now, and at what speed."""
    if sub is None:
        return Judgement(Verdict.DENY_UNKNOWN, detail="the subscriber is unknown")
    v = sub.view
    # A plan that blocks at the cap keeps its sessions: the CHF refuses the quota (with a
    # final-unit indication, e.g. a redirect to top up), the policy does not change.
    if v.status is not SubscriberStatus.ACTIVE:
        return Judgement(Verdict.DENY_STATUS, detail=f"the subscriber is {v.status.value}")
    roaming = sub.roaming_at(serving_plmn)
    reason = v.speed.reason
    if roaming:
        assert serving_plmn is not None
        if sub.pass_applies(serving_plmn):
            reason = "roaming-pass" if reason in ("plan", "roaming-pass") else reason
        elif not v.roaming_allowed_without_pass:
            return Judgement(
                Verdict.DENY_ROAMING, roaming=True,
                detail=f"no roaming pass covers the serving network {serving_plmn}")
    ends = v.speed.boost_ends_at
    return Judgement(Verdict.ALLOW, speed=v.speed.speed, reason=reason, roaming=roaming,
                     recheck_at=ends if ends is not None and ends > now else None)


# ---------------------------------------------------------------------------------------
# State, events, effects


@dataclass(frozen=True)
class PolicyState:
    sm_policy_id: str
    supi: str
    notification_uri: str
    serving_plmn: str | None
    roaming: bool
    speed: Speed
    reason: str
    version: int
    active: bool = True
    recheck_at: datetime | None = None


@dataclass(frozen=True)
class Created:
    """A new association: the shell has judged it allowed."""

    sm_policy_id: str
    supi: str
    notification_uri: str
    serving_plmn: str | None
    judgement: Judgement
    # The first decision's version. A repeated create replaces the association under the
    # same id, so the shell starts from a number no earlier decision can have had.
    version: int = 1


@dataclass(frozen=True)
class ContextUpdated:
    """The SMF reported a change (``SmPolicyUpdateContextData``); answered synchronously."""

    serving_plmn: str | None
    judgement: Judgement


@dataclass(frozen=True)
class SubscriberChanged:
    """The ledger says counters, speed or status changed; re-judged on the policy's PLMN."""

    judgement: Judgement


@dataclass(frozen=True)
class Released:
    """The SMF deleted the association, or answered 404 to a push (``gone``)."""

    gone: bool = False


Event = Created | ContextUpdated | SubscriberChanged | Released


@dataclass(frozen=True)
class PushUpdate:
    """Send ``SmPolicyNotification`` with this decision to ``{notificationUri}/update``."""

    decision: dict[str, Any]


@dataclass(frozen=True)
class PushTerminate:
    """Send ``TerminationNotification`` to ``{notificationUri}/terminate``."""

    cause: str


@dataclass(frozen=True)
class Answer:
    """The decision returned in the HTTP response (create, update)."""

    decision: dict[str, Any]


@dataclass(frozen=True)
class Record:
    """An EDR: ``kind`` is created, throttled, restored, speed-changed, terminated,
    released."""

    kind: str
    speed_before: Speed | None
    speed_after: Speed | None
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)


Effect = PushUpdate | PushTerminate | Answer | Record


class PolicyRejected(Exception):
    """The core refuses the event; the shell turns it into the TS 29.512 error."""

    def __init__(self, verdict: Verdict, detail: str) -> None:
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


# ---------------------------------------------------------------------------------------
# Decisions


def session_decision(state: PolicyState, qos: DefaultQos, *, initial: bool,
                     now: datetime) -> dict[str, Any]:
    """The ``SmPolicyDecision`` for the state. The initial one carries the default PCC rule
    and QoS data; later ones carry only what changes (the session rule)."""
    arp = {"priorityLevel": qos.arp_priority, "preemptCap": "NOT_PREEMPT",
           "preemptVuln": "PREEMPTABLE"}
    rule: dict[str, Any] = {
        "sessRuleId": SESS_RULE_ID,
        "authSessAmbr": ambr(state.speed),
        "authDefQos": {"5qi": qos.five_qi, "arp": arp, "priorityLevel": qos.arp_priority},
    }
    decision: dict[str, Any] = {"sessRules": {SESS_RULE_ID: rule}}
    triggers = list(TRIGGERS)
    if state.recheck_at is not None and state.recheck_at > now:
        decision["revalidationTime"] = iso_z(state.recheck_at)
        triggers.append("RE_TIMEOUT")
    if initial:
        decision["pccRules"] = {PCC_RULE_ID: {
            "pccRuleId": PCC_RULE_ID,
            "precedence": 255,
            "flowInfos": [{"flowDescription": "permit out ip from any to assigned",
                           "flowDirection": "BIDIRECTIONAL"}],
            "refQosData": [QOS_ID],
        }}
        decision["qosDecs"] = {QOS_ID: {"qosId": QOS_ID, "5qi": qos.five_qi, "arp": arp,
                                        "defQosFlowIndication": True}}
    decision["policyCtrlReqTriggers"] = triggers
    return decision


def speed_event_kind(before: Speed, after: Speed, reason_after: str) -> str:
    if reason_after == "throttled":
        return "throttled"
    slower = after.downlink_kbps < before.downlink_kbps
    return "speed-changed" if slower else "restored"


def decide(state: PolicyState | None, event: Event, now: datetime, qos: DefaultQos
           ) -> tuple[PolicyState | None, list[Effect]]:
    """One step of an SM policy association. Raises ``PolicyRejected`` for a refused
    create; every other refusal becomes a termination effect."""
    if isinstance(event, Created):
        j = event.judgement
        if j.verdict is not Verdict.ALLOW or j.speed is None:
            raise PolicyRejected(j.verdict, j.detail)
        new = PolicyState(
            sm_policy_id=event.sm_policy_id, supi=event.supi,
            notification_uri=event.notification_uri, serving_plmn=event.serving_plmn,
            roaming=j.roaming, speed=j.speed, reason=j.reason, version=event.version,
            recheck_at=j.recheck_at)
        return new, [Answer(session_decision(new, qos, initial=True, now=now)),
                     Record("created", None, j.speed, j.reason)]

    if state is None or not state.active:
        return state, []

    if isinstance(event, Released):
        ended = replace(state, active=False)
        kind = "terminated" if event.gone else "released"
        return ended, [Record(kind, state.speed, None, "smf-gone" if event.gone else "smf")]

    if isinstance(event, ContextUpdated):
        j = event.judgement
        if j.verdict is not Verdict.ALLOW or j.speed is None:
            ended = replace(state, active=False, version=state.version + 1,
                            serving_plmn=event.serving_plmn)
            decision = {"relCause": "UE_SUBSCRIPTION"}
            return ended, [Answer(decision),
                           Record("terminated", state.speed, None, j.verdict.value)]
        new = replace(state, serving_plmn=event.serving_plmn, roaming=j.roaming,
                      speed=j.speed, reason=j.reason, recheck_at=j.recheck_at,
                      version=state.version + 1)
        effects: list[Effect] = [Answer(session_decision(new, qos, initial=False, now=now))]
        if new.speed != state.speed:
            effects.append(Record(speed_event_kind(state.speed, new.speed, new.reason),
                                  state.speed, new.speed, new.reason))
        return new, effects

    # SubscriberChanged: push only when what the SMF holds must change.
    j = event.judgement
    if j.verdict is not Verdict.ALLOW or j.speed is None:
        ended = replace(state, active=False, version=state.version + 1)
        return ended, [PushTerminate("UE_SUBSCRIPTION"),
                       Record("terminated", state.speed, None, j.verdict.value)]
    if j.speed == state.speed and j.roaming == state.roaming \
            and (j.recheck_at == state.recheck_at or j.recheck_at is None):
        # Nothing the SMF holds changes (a passed revalidation time is simply dropped).
        if j.reason == state.reason and j.recheck_at == state.recheck_at:
            return state, []
        return replace(state, reason=j.reason, recheck_at=j.recheck_at,
                       version=state.version + 1), []
    new = replace(state, speed=j.speed, reason=j.reason, roaming=j.roaming,
                  recheck_at=j.recheck_at, version=state.version + 1)
    effects = [PushUpdate(session_decision(new, qos, initial=False, now=now))]
    if new.speed != state.speed:
        effects.append(Record(speed_event_kind(state.speed, new.speed, new.reason),
                              state.speed, new.speed, new.reason))
    return new, effects
