"""The fraud rules as pure functions: ``evaluate(state, event, now, ...) -> (state,
detections)``.

``SubState`` is what the rules remember about one subscriber: open sessions (charging and
policy, with host network, serving PLMN and PDU session), the last country, usage in time
bins, recent purchases, which rules have a case open or are quiet, and the ids of the EDRs
already applied (so a record read twice changes nothing). ``Event`` is one EDR, ``Tick``
the passing of time (orphan sessions are found by waiting). No I/O, no logging.

The data the rules work on is in ``nf.fraud.state``; the pairing of the two sides of a
PDU session in ``nf.fraud.pairing``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from nf.fraud.pairing import ending, link, pdu_sessions, peer_of
from nf.fraud.state import (
    APPLIED_MAX,
    CHARGING_CLOSE,
    CHARGING_OPEN,
    POLICY_CLOSE,
    POLICY_OPEN,
    REFUSED,
    Context,
    Detection,
    Event,
    Sess,
    SubState,
    Tick,
    bin_s,
    case_id,
    country_of,
    window_usage,
)

# Importable from here too, as before the data moved to ``nf.fraud.state``.
__all__ = ["Context", "Detection", "Event", "Sess", "SubState", "Tick", "case_id",
           "country_of", "due_at", "evaluate", "needs_plan_class", "pdu_sessions",
           "resolved", "window_usage"]


def _neighbours(a: str, b: str, pairs: list[tuple[str, str]]) -> bool:
    return (a, b) in pairs or (b, a) in pairs


def _suppressed(st: SubState, rule: str, now: datetime) -> bool:
    if any(r == rule for r, _ in st.open):
        return True
    return any(r == rule and until > now for r, until in st.quiet)


def _apply_session(st: SubState, ev: Event, ctx: Context) -> SubState:
    if ev.ref is None:
        return st
    if ev.kind == "charging":
        key, opens, closes = f"c:{ev.ref}", CHARGING_OPEN, CHARGING_CLOSE
    else:
        key, opens, closes = f"p:{ev.ref}", POLICY_OPEN, POLICY_CLOSE
    others = tuple(s for s in st.sessions if s.key != key)
    mine = next((s for s in st.sessions if s.key == key), None)
    if mine is not None and mine.closed_at is not None:
        return st  # released already: a late record of it changes nothing
    if ev.event in closes or (ev.result in REFUSED):
        if mine is None:
            return st
        partner = peer_of(st.sessions, mine)
        if partner is not None and partner.closed_at is None:
            # The other side is still open: the PDU session is ending, not gone.
            closed = replace(mine, closed_at=ev.time, seen_at=max(mine.seen_at, ev.time))
            return replace(st, sessions=(*others, closed))
        return replace(st, sessions=tuple(s for s in others if s is not partner))
    pdu = f"{ev.host_network}:{ev.pdu_session_id}" if ev.pdu_session_id is not None else None
    if mine is None:
        if ev.event not in opens and ev.kind == "charging" and ev.event != "update":
            return st
        mine = Sess(key, ev.kind, ev.host_network, ev.serving_plmn, pdu, ev.time, ev.time)
    elif ev.time >= mine.seen_at:  # where the session is now (a late record is not)
        mine = replace(mine, seen_at=ev.time,
                       serving_plmn=ev.serving_plmn or mine.serving_plmn,
                       host_network=ev.host_network or mine.host_network,
                       pdu=mine.pdu or pdu)
    else:
        mine = replace(mine, pdu=mine.pdu or pdu)
    sessions = link((*others, mine), mine)
    if len(sessions) > ctx.sessions_max:  # bounded: the least recently seen go first
        sessions = tuple(sorted(sessions, key=lambda s: s.seen_at)[-ctx.sessions_max:])
    return replace(st, sessions=sessions)


def _apply_usage(st: SubState, ev: Event, ctx: Context) -> SubState:
    if ev.kind != "charging" or ev.used_total <= 0:
        return st
    w = ctx.rules.usage_velocity.window_s
    b = bin_s(w)
    start = datetime.fromtimestamp(ev.time.timestamp() // b * b, tz=ev.time.tzinfo)
    bins = dict(st.usage)
    bins[start] = bins.get(start, 0) + ev.used_total
    keep = ev.time - timedelta(seconds=w + b)
    return replace(st, usage=tuple(sorted((t, n) for t, n in bins.items() if t > keep)))


def _prune(st: SubState, now: datetime, ctx: Context) -> SubState:
    """Forget sessions not seen for ``session_stale_s`` and released sides whose PDU
    session's other side was not released within the orphan grace period (it is then an
    orphan, and open again for the other rules)."""
    stale = now - timedelta(seconds=ctx.session_stale_s)
    grace = timedelta(seconds=ctx.rules.orphan_session.grace_s)
    pw = timedelta(seconds=ctx.rules.purchase_velocity.window_s)
    sessions = tuple(s for s in st.sessions if s.seen_at > stale and (
        s.closed_at is None or s.closed_at + grace > now))
    if any(s.closed_at is not None for s in sessions):  # a released side waits for its peer
        sessions = tuple(s for s in sessions
                         if s.closed_at is None or peer_of(sessions, s) is not None)
    return replace(
        st,
        sessions=sessions,
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
    out = {"session": s.key, "kind": s.kind, "hostNetwork": s.host_network,
           "servingPlmn": s.serving_plmn, "pduSession": s.pdu,
           "openedAt": s.opened_at.isoformat(), "lastSeenAt": s.seen_at.isoformat()}
    if s.closed_at is not None:
        out["closedAt"] = s.closed_at.isoformat()
    return out


Groups = list[tuple[Sess, ...]]


def _active(groups: Groups) -> Groups:
    """The PDU sessions that are not ending."""
    return [g for g in groups if not ending(g)]


def _where(group: tuple[Sess, ...]) -> Sess:
    """The side of a PDU session that reported last: where the PDU session is now."""
    return max(group, key=lambda x: (x.seen_at, x.kind == "policy"))


def _multi_network(groups: Groups, ctx: Context) -> dict[str, Any] | None:
    active = _active(groups)
    current = [_where(g) for g in active]
    nets = sorted({s.host_network for s in current if s.host_network})
    plmns = sorted({s.serving_plmn for s in current if s.serving_plmn})
    pairs = ctx.rules.multi_network.neighbours
    far = [(a, b) for i, a in enumerate(plmns) for b in plmns[i + 1:]
           if not _neighbours(a, b, pairs)]
    if len(nets) < 2 and not far:
        return None
    return {"hostNetworks": nets, "servingPlmns": plmns,
            "sessions": [_sess_json(s) for g in active for s in g],
            "locations": [{"pduSessionId": w.pdu_id, "hostNetwork": w.host_network,
                           "servingPlmn": w.serving_plmn, "sessions": [s.key for s in g]}
                          for g, w in zip(active, current, strict=True)]}


def _lone(groups: Groups) -> list[Sess]:
    """Open sessions with a PDU session id and no other side (ending ones wait)."""
    return [g[0] for g in groups
            if len(g) == 1 and g[0].pdu is not None and g[0].closed_at is None]


def _orphans(groups: Groups, now: datetime, ctx: Context) -> list[Sess]:
    grace = timedelta(seconds=ctx.rules.orphan_session.grace_s)
    return [s for s in _lone(groups) if now - s.opened_at >= grace]


def due_at(st: SubState, ctx: Context) -> datetime | None:
    """When a rule should look again without a new event (None: no need): a lone side
    of a PDU session turns orphan, or an ending PDU session's wait for its other side's
    release is over."""
    grace = timedelta(seconds=ctx.rules.orphan_session.grace_s)
    times = [s.closed_at + grace for s in st.sessions if s.closed_at is not None]
    if ctx.rules.orphan_session.action != "off":
        times += [s.opened_at + grace for s in _lone(pdu_sessions(st.sessions))]
    return min(times) if times else None


def _check(st: SubState, trigger: str, at: datetime, ctx: Context, ev: Event | None
           ) -> tuple[SubState, list[Detection]]:
    out: list[Detection] = []
    r = ctx.rules
    groups: Groups | None = None

    def pdus() -> Groups:  # the sessions do not change below
        nonlocal groups
        if groups is None:
            groups = pdu_sessions(st.sessions)
        return groups

    def on(rule: str) -> bool:
        return r.action(rule) != "off" and not _suppressed(st, rule, at)

    if on("multi_network") and (ev is None or ev.kind in ("charging", "policy")):
        ev_mn = _multi_network(pdus(), ctx)
        if ev_mn is not None:
            st, d = _fire(st, "multi_network", trigger, at, ctx, ev_mn)
            out.append(d)
    if on("concurrent_sessions"):
        n = len(_active(pdus()))
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
        orphans = _orphans(pdus(), at, ctx)
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
                and not _neighbours(st.country, country, rule.borders) \
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
    state and what fired. An EDR already applied changes nothing.

    The rules judge an EDR as of its own time (a reader catching up on a backlog sees the
    subscriber as it was then: a session's other side, stored just after it, is not late
    by the time the backlog is read); ``now`` is the time of a ``Tick``, and bounds how
    long applied EDR ids are remembered."""
    if isinstance(ev, Tick):
        st = _prune(st, now, ctx)
        return _check(st, f"tick:{now.isoformat()}", now, ctx, None)
    st = _prune(st, ev.time, ctx)
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
    st, more = _check(st, ev.id, ev.time, ctx, ev)
    return st, out + more


def resolved(st: SubState, rule: str, case: str, now: datetime, false_positive: bool,
             cooldown_s: int) -> SubState:
    """A case was resolved: the rule may fire again (after the cool-down, when the case
    was a false positive)."""
    st = replace(st, open=tuple((r, c) for r, c in st.open if c != case))
    if false_positive and cooldown_s > 0:
        st = replace(st, quiet=(*st.quiet, (rule, now + timedelta(seconds=cooldown_s))))
    return st
