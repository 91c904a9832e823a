"""What the fraud rules remember and see, as plain frozen data: ``SubState`` (one
subscriber), ``Event`` (one EDR), ``Tick`` (time passing), ``Detection`` and the
``Context`` of one brand's rules; with the small pure helpers over them (case ids,
countries, usage windows). No I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nf.clock import utc
from nf.settings.fraud import FraudRules

APPLIED_MAX = 256  # EDR ids remembered per subscriber (besides the late window)
USAGE_BINS = 60  # a usage window is kept in at most this many bins
REFUSED = frozenset({"USER_UNKNOWN", "END_USER_REQUEST_DENIED", "END_USER_SERVICE_DENIED",
                     "RATING_FAILED"})
CHARGING_OPEN = frozenset({"create"})
CHARGING_CLOSE = frozenset({"release", "supervision_close", "aborted", "peer_gone"})
POLICY_OPEN = frozenset({"created"})
POLICY_CLOSE = frozenset({"terminated", "released", "deleted"})


@dataclass(frozen=True)
class Sess:
    key: str  # "c:<chargingDataRef>" or "p:<smPolicyId>"
    kind: str  # "charging" or "policy"
    host_network: str | None
    serving_plmn: str | None
    pdu: str | None  # "<host network>:<PDU session id>" when known
    opened_at: datetime
    seen_at: datetime
    closed_at: datetime | None = None  # released; its PDU session's other side is not yet
    peer: str | None = None  # the key of the other side of its PDU session

    @property
    def pdu_id(self) -> str | None:
        return None if self.pdu is None else self.pdu.rpartition(":")[2]

    @property
    def pdu_network(self) -> str | None:
        """The host network the PDU session was first seen on (part of ``pdu``)."""
        return None if self.pdu is None else self.pdu.rpartition(":")[0]


@dataclass(frozen=True)
class SubState:
    supi: str
    brand: str | None = None
    sessions: tuple[Sess, ...] = ()
    country: str | None = None
    plmn: str | None = None
    country_at: datetime | None = None  # last time seen in ``country``
    usage: tuple[tuple[datetime, int], ...] = ()  # (bin start, bytes), oldest first
    purchases: tuple[datetime, ...] = ()
    open: tuple[tuple[str, str], ...] = ()  # (rule, case id) with a case open
    quiet: tuple[tuple[str, datetime], ...] = ()  # (rule, until)
    applied: tuple[tuple[str, datetime], ...] = ()  # (EDR id, its time)
    version: int = 0


@dataclass(frozen=True)
class Event:
    """The fields of one EDR the rules read."""

    id: str
    kind: str  # "charging", "policy", "purchase", "status"
    event: str
    time: datetime
    supi: str
    brand: str | None = None
    host_network: str | None = None
    serving_plmn: str | None = None
    pdu_session_id: int | None = None
    ref: str | None = None  # chargingDataRef or smPolicyId
    used_total: int = 0
    result: str | None = None
    offer_id: str | None = None


@dataclass(frozen=True)
class Tick:
    """Time passed: rules that wait (orphan sessions) look again."""


@dataclass(frozen=True)
class Detection:
    rule: str
    supi: str
    brand: str | None
    at: datetime
    trigger: str  # the EDR id (or "tick:<time>") that made the rule fire
    case_id: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Context:
    """What the rules need besides state and event."""

    rules: FraudRules
    cooldown_s: int = 3600
    repeat_after_s: int = 3600
    session_stale_s: int = 6 * 3600
    sessions_max: int = 64
    late_window_s: float = 10.0
    mcc_countries: Mapping[str, str] | None = None
    plan_class: str | None = None  # the subscriber's usage class (resolved by the shell)


def case_id(supi: str, rule: str, trigger: str) -> str:
    """Deterministic: the same EDR firing the same rule again is the same case."""
    return hashlib.sha256(f"{supi}\x00{rule}\x00{trigger}".encode()).hexdigest()[:24]


def country_of(plmn: str | None, mcc_countries: Mapping[str, str] | None = None
               ) -> str | None:
    if not plmn or len(plmn) < 5:
        return None
    mcc = plmn[:3]
    return (mcc_countries or {}).get(mcc, mcc)


def bin_s(window_s: int) -> int:
    return max(1, -(-window_s // USAGE_BINS))


def window_usage(st: SubState, at: datetime, window_s: int) -> int:
    start = at - timedelta(seconds=window_s)
    return sum(n for t, n in st.usage if t > start - timedelta(seconds=bin_s(window_s)))


def event_of(d: dict[str, Any]) -> Event | None:
    """The ``Event`` of a stored EDR, or None for a kind the rules do not read."""
    kind = d.get("kind")
    if kind not in ("charging", "policy", "purchase", "status") or not d.get("supi"):
        return None
    ref = d.get("charging_data_ref") if kind == "charging" else d.get("sm_policy_id")
    pdu = d.get("pdu_session_id")
    return Event(id=str(d["_id"]), kind=kind, event=str(d.get("event")), time=utc(d["time"]),
                 supi=d["supi"], brand=d.get("brand"), host_network=d.get("host_network"),
                 serving_plmn=d.get("serving_plmn"),
                 pdu_session_id=pdu if isinstance(pdu, int) else None, ref=ref,
                 used_total=int(d.get("used_total") or 0), result=d.get("result"),
                 offer_id=d.get("offer_id"))
