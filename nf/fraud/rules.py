"""The fraud rules as pure functions: ``evaluate(state, event, now, ...) -> (state,
detections)``.

``SubState`` is what the rules remember about one subscriber: open sessions (charging and
policy, with host network, serving PLMN and PDU session), the last country, usage in time
bins, recent purchases, which rules have a case open or are quiet, and the ids of the EDRs
already applied (so a record read twice changes nothing). ``Event`` is one EDR, ``Tick``
the passing of time (orphan sessions are found by waiting). No I/O, no logging.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from nf.fraud.config import FraudRules

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


def _neighbours(a: str, b: str, pairs: list[tuple[str, str]]) -> bool:
    return (a, b) in pairs or (b, a) in pairs


def _suppressed(st: SubState, rule: str, now: datetime) -> bool:
    if any(r == rule for r, _ in st.open):
        return True
    return any(r == rule and until > now for r, until in st.quiet)


def _bin_s(window_s: int) -> int:
    return max(1, -(-window_s // USAGE_BINS))


def window_usage(st: SubState, at: datetime, window_s: int) -> int:
    start = at - timedelta(seconds=window_s)
    return sum(n for t, n in st.usage if t > start - timedelta(seconds=_bin_s(window_s)))


# -------------------------------------------------------------------------- applying events


def _apply_session(st: SubState, ev: Event, ctx: Context) -> SubState:
    if ev.ref is None:
        return st
    if ev.kind == "charging":
        key, opens, closes = f"c:{ev.ref}", CHARGING_OPEN, CHARGING_CLOSE
    else:
        key, opens, closes = f"p:{ev.ref}", POLICY_OPEN, POLICY_CLOSE
    others = tuple(s for s in st.sessions if s.key != key)
    mine = next((s for s in st.sessions if s.key == key), None)
    if ev.event in closes or (ev.result in REFUSED):
        return replace(st, sessions=others)
    pdu = f"{ev.host_network}:{ev.pdu_session_id}" if ev.pdu_session_id is not None else None
    if mine is None:
        if ev.event not in opens and ev.kind == "charging" and ev.event != "update":
            return st
        mine = Sess(key, ev.kind, ev.host_network, ev.serving_plmn, pdu, ev.time, ev.time)
    else:
        mine = replace(mine, seen_at=max(mine.seen_at, ev.time),
                       serving_plmn=ev.serving_plmn or mine.serving_plmn,
                       pdu=mine.pdu or pdu)
    sessions = (*others, mine)
    if len(sessions) > ctx.sessions_max:  # bounded: the least recently seen go first
        sessions = tuple(sorted(sessions, key=lambda s: s.seen_at)[-ctx.sessions_max:])
    return replace(st, sessions=sessions)


def _apply_usage(st: SubState, ev: Event, ctx: Context) -> SubState:
    if ev.kind != "charging" or ev.used_total <= 0:
        return st
    w = ctx.rules.usage_velocity.window_s
    b = _bin_s(w)
    start = datetime.fromtimestamp(ev.time.timestamp() // b * b, tz=ev.time.tzinfo)
    bins = dict(st.usage)
    bins[start] = bins.get(start, 0) + ev.used_total
    keep = ev.time - timedelta(seconds=w + b)
    return replace(st, usage=tuple(sorted((t, n) for t, n in bins.items() if t > keep)))


def _prune(st: SubState, now: datetime, ctx: Context) -> SubState:
    stale = now - timedelta(seconds=ctx.session_stale_s)
    pw = timedelta(seconds=ctx.rules.purchase_velocity.window_s)
    return replace(
        st,
        sessions=tuple(s for s in st.sessions if s.seen_at > stale),
        purchases=tuple(t for t in st.purchases if t > now - pw),
        quiet=tuple((r, u) for r, u in st.quiet if u > now))


# ------------------------------------------------------------------------------ the rules


def _fire(st: SubState, rule: str, trigger: str, at: datetime, ctx: Context,
          evidence: dict[str, Any]) -> tuple[SubState, Detection]:
    cid = case_id(st.supi, rule, trigger)
    d = Detection(rule, st.supi, st.brand, at, trigger, cid, evidence)
    if ctx.rules.action(rule) == "record":
        until = at + timedelta(seconds=ctx.repeat_after_s)
        return replace(st, quiet=(*st.quiet, (rule, until))), d
    return replace(st, open=(*st.open, (rule, cid))), d


def _sess_json(s: Sess) -> dict[str, Any]:
    return {"session": s.key, "kind": s.kind, "hostNetwork": s.host_network,
            "servingPlmn": s.serving_plmn, "pduSession": s.pdu,
            "openedAt": s.opened_at.isoformat(), "lastSeenAt": s.seen_at.isoformat()}


def _latest_per_pdu(st: SubState) -> list[Sess]:
    """One session per PDU session (charging and policy of one PDU session pair up), the
    most recently seen, so a PLMN change reported to one side first is not two PLMNs."""
    latest: dict[str, Sess] = {}
    for s in st.sessions:
        k = s.pdu or s.key
        if k not in latest or s.seen_at > latest[k].seen_at:
            latest[k] = s
    return list(latest.values())


def _multi_network(st: SubState, ctx: Context) -> dict[str, Any] | None:
    current = _latest_per_pdu(st)
    nets = sorted({s.host_network for s in current if s.host_network})
    plmns = sorted({s.serving_plmn for s in current if s.serving_plmn})
    pairs = ctx.rules.multi_network.neighbours
    far = [(a, b) for i, a in enumerate(plmns) for b in plmns[i + 1:]
           if not _neighbours(a, b, pairs)]
    if len(nets) < 2 and not far:
        return None
    return {"hostNetworks": nets, "servingPlmns": plmns,
            "sessions": [_sess_json(s) for s in st.sessions]}


def _pdu_sessions(st: SubState) -> int:
    return len({s.pdu or s.key for s in st.sessions})


def _orphans(st: SubState, now: datetime, ctx: Context) -> list[Sess]:
    grace = timedelta(seconds=ctx.rules.orphan_session.grace_s)
    out = []
    for s in st.sessions:
        if s.pdu is None or now - s.opened_at < grace:
            continue
        if not any(o.kind != s.kind and o.pdu == s.pdu for o in st.sessions):
            out.append(s)
    return out


def orphan_due(st: SubState, ctx: Context) -> datetime | None:
    """When the orphan rule should look again without a new event (None: no need)."""
    if ctx.rules.orphan_session.action == "off":
        return None
    grace = timedelta(seconds=ctx.rules.orphan_session.grace_s)
    times = [s.opened_at + grace for s in st.sessions if s.pdu is not None
             and not any(o.kind != s.kind and o.pdu == s.pdu for o in st.sessions)]
    return min(times) if times else None


def _check(st: SubState, trigger: str, at: datetime, now: datetime, ctx: Context,
           ev: Event | None) -> tuple[SubState, list[Detection]]:
    out: list[Detection] = []
    r = ctx.rules

    def on(rule: str) -> bool:
        return r.action(rule) != "off" and not _suppressed(st, rule, at)

    if on("multi_network") and (ev is None or ev.kind in ("charging", "policy")):
        ev_mn = _multi_network(st, ctx)
        if ev_mn is not None:
            st, d = _fire(st, "multi_network", trigger, at, ctx, ev_mn)
            out.append(d)
    if on("concurrent_sessions"):
        n = _pdu_sessions(st)
        if n > r.concurrent_sessions.max_sessions:
            st, d = _fire(st, "concurrent_sessions", trigger, at, ctx, {
                "pduSessions": n, "maxSessions": r.concurrent_sessions.max_sessions,
                "sessions": [_sess_json(s) for s in st.sessions]})
            out.append(d)
    if on("usage_velocity") and ev is not None and ev.kind == "charging":
        used = window_usage(st, ev.time, r.usage_velocity.window_s)
        limit = r.usage_velocity.limit(ctx.plan_class)
        if used > limit:
            st, d = _fire(st, "usage_velocity", trigger, at, ctx, {
                "bytes": used, "maxBytes": limit, "windowS": r.usage_velocity.window_s,
                "planClass": ctx.plan_class or "default",
                "bins": [[t.isoformat(), n] for t, n in st.usage]})
            out.append(d)
    if on("purchase_velocity") and ev is not None and ev.kind == "purchase":
        n = len(st.purchases)
        if n > r.purchase_velocity.max_purchases:
            st, d = _fire(st, "purchase_velocity", trigger, at, ctx, {
                "purchases": n, "maxPurchases": r.purchase_velocity.max_purchases,
                "windowS": r.purchase_velocity.window_s,
                "times": [t.isoformat() for t in st.purchases],
                "lastOffer": ev.offer_id})
            out.append(d)
    if on("orphan_session"):
        orphans = _orphans(st, now, ctx)
        if orphans:
            st, d = _fire(st, "orphan_session", trigger, at, ctx, {
                "graceS": r.orphan_session.grace_s,
                "orphans": [_sess_json(s) for s in orphans]})
            out.append(d)
    return st, out


def _travel(st: SubState, ev: Event, ctx: Context) -> tuple[SubState, Detection | None]:
    country = country_of(ev.serving_plmn, ctx.mcc_countries)
    if country is None or ev.kind not in ("charging", "policy"):
        return st, None
    if st.country_at is not None and ev.time < st.country_at:
        return st, None  # a late record: the travel story is already past it
    det = None
    if st.country is not None and country != st.country and st.country_at is not None:
        gap = (ev.time - st.country_at).total_seconds()
        rule = ctx.rules.impossible_travel
        if gap < rule.min_travel_s and rule.action != "off" \
                and not _suppressed(st, "impossible_travel", ev.time):
            st, det = _fire(st, "impossible_travel", ev.id, ev.time, ctx, {
                "fromCountry": st.country, "fromPlmn": st.plmn, "toCountry": country,
                "toPlmn": ev.serving_plmn, "seconds": gap, "minTravelS": rule.min_travel_s})
    return replace(st, country=country, plmn=ev.serving_plmn, country_at=ev.time), det


def needs_plan_class(st: SubState, ev: Event, ctx: Context) -> bool:
    """Would this event take the subscriber's window usage past the smallest limit? Only
    then does the shell look up the plan (to pick the limit of its class)."""
    r = ctx.rules.usage_velocity
    if r.action == "off" or ev.kind != "charging" or ev.used_total <= 0:
        return False
    used = window_usage(st, ev.time, r.window_s) + ev.used_total
    return used > min(r.max_bytes.values())


def evaluate(st: SubState, ev: Event | Tick, now: datetime, ctx: Context
             ) -> tuple[SubState, list[Detection]]:
    """Apply one EDR (or the passing of time) to a subscriber's state; return the new
    state and what fired. An EDR already applied changes nothing."""
    st = _prune(st, now, ctx)
    if isinstance(ev, Tick):
        return _check(st, f"tick:{now.isoformat()}", now, now, ctx, None)
    if any(i == ev.id for i, _ in st.applied):
        return st, []
    keep = now - timedelta(seconds=ctx.late_window_s)
    applied = [(i, t) for i, t in st.applied if t >= keep][-APPLIED_MAX + 1:]
    st = replace(st, brand=st.brand or ev.brand, applied=(*applied, (ev.id, ev.time)))
    out: list[Detection] = []
    if ev.kind in ("charging", "policy"):
        st = _apply_session(st, ev, ctx)
        st = _apply_usage(st, ev, ctx)
        st, travel = _travel(st, ev, ctx)
        if travel is not None:
            out.append(travel)
    elif ev.kind == "purchase":
        st = replace(st, purchases=(*st.purchases, ev.time)[
            -(ctx.rules.purchase_velocity.max_purchases + 1):])
    st, more = _check(st, ev.id, ev.time, now, ctx, ev)
    return st, out + more


def resolved(st: SubState, rule: str, case: str, now: datetime, false_positive: bool,
             cooldown_s: int) -> SubState:
    """A case was resolved: the rule may fire again (after the cool-down, when the case
    was a false positive)."""
    st = replace(st, open=tuple((r, c) for r, c in st.open if c != case))
    if false_positive and cooldown_s > 0:
        st = replace(st, quiet=(*st.quiet, (rule, now + timedelta(seconds=cooldown_s))))
    return st
