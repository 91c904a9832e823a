"""The two-places-at-once rule (``multi_network``) and the PDU session behind it, as pure
functions: the charging session and the policy association of one PDU session are one
place, wherever the side that reported last says it is. A border crossing reported by the
PCF first, by the CHF first, or by one side twice around the other's report, is a move,
not a second place; a PDU session released on network A while the subscriber opens one
on B is ending, not in A; two different PDU sessions in two places open a case. Tables for
the named situations, hypothesis for any interleaving of the two sides' reports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from nf.fraud.rules import Context, Event, SubState, Tick, due_at, evaluate, pdu_sessions
from nf.fraud.store import state_doc, state_from
from tests.unit.test_fraud_rules import SUPI, T0, chg, ctx, pol, run

# Where a PDU session can be: (host network, serving PLMN). Same MCC, so the
# impossible-travel rule has nothing to say; no pair is configured as neighbours.
A = ("northwind", "00101")
A2 = ("northwind", "00104")  # another PLMN the same host network serves
B = ("bluepeak", "00102")
C = ("redmoor", "00105")
PLACES = (A, A2, B, C)

MULTI = ctx(impossible_travel={"action": "off"}, orphan_session={"action": "off"},
            concurrent_sessions={"action": "off"})


def P(event: str, t: float, where: tuple[str, str], ref: str = "p1", pdu: int = 1
      ) -> Event:
    """A policy record of association ``ref`` (its host network is the one it opened on,
    as the PCF records it)."""
    return pol(event, t, ref, where[0], where[1], pdu=pdu)


def C_(event: str, t: float, where: tuple[str, str], ref: str = "c1", pdu: int | None = 1
       ) -> Event:
    """A charging record of session ``ref`` (the CHF records the host network of the
    serving PLMN)."""
    return chg(event, t, ref, where[0], where[1], pdu=pdu)


def _pol_at(event: str, t: float, opened: tuple[str, str], now: tuple[str, str],
            ref: str = "p1", pdu: int = 1) -> Event:
    """A policy record after a move: the association keeps its host network."""
    return pol(event, t, ref, opened[0], now[1], pdu=pdu)


# One PDU session, opened at A, crossing to B: every order the two sides may report in.
CROSSINGS = {
    "policy first, then charging": [
        P("created", 0, A), C_("create", 1, A), _pol_at("speed-changed", 10, A, B),
        C_("update", 12, B), C_("update", 60, B)],
    "charging first, then policy": [
        P("created", 0, A), C_("create", 1, A), C_("update", 10, B),
        _pol_at("speed-changed", 12, A, B), C_("update", 60, B)],
    "charging reports the old PLMN between the policy's and its own report of the new": [
        P("created", 0, A), C_("create", 1, A), _pol_at("speed-changed", 10, A, B),
        C_("update", 11, A), C_("update", 12, B)],
    "policy reports the old PLMN after charging reported the new": [
        P("created", 0, A), C_("create", 1, A), C_("update", 10, B),
        _pol_at("throttled", 11, A, A), _pol_at("restored", 20, A, B)],
    "within one host network, then to another": [
        P("created", 0, A), C_("create", 1, A), C_("update", 10, A2),
        _pol_at("speed-changed", 11, A, A2), _pol_at("speed-changed", 30, A, C),
        C_("update", 31, C)],
    "charging session first seen after the move (its create already at B)": [
        P("created", 0, A), _pol_at("speed-changed", 5, A, B), C_("create", 6, B)],
    "charging update without the PDU session id after a forgotten session": [
        P("created", 0, A), C_("update", 5, B, pdu=None), C_("update", 6, B, pdu=None),
        _pol_at("speed-changed", 7, A, B)],
    "crossing, then released": [
        P("created", 0, A), C_("create", 1, A), _pol_at("speed-changed", 10, A, B),
        C_("update", 12, B), C_("release", 30, B), _pol_at("released", 31, A, B)],
}


@pytest.mark.parametrize("events", CROSSINGS.values(), ids=CROSSINGS.keys())
def test_one_pdu_session_crossing_a_border_is_one_place(events: list[Event]) -> None:
    s, fired = run(MULTI, *events)
    assert fired == []
    open_ = [g for g in pdu_sessions(s.sessions) if all(x.closed_at is None for x in g)]
    assert len(open_) <= 1


def _two(first: tuple[str, str], second: tuple[str, str], pdu2: int) -> list[Event]:
    return [P("created", 0, first), C_("create", 1, first),
            P("created", 5, second, ref="p2", pdu=pdu2),
            C_("create", 6, second, ref="c2", pdu=pdu2)]


TWO_PLACES = {
    "two PDU sessions on two host networks": _two(A, B, 2),
    "the same PDU session id on two host networks (a cloned SIM)": _two(A, B, 1),
    "two PDU sessions on two PLMNs of one host network": _two(A, A2, 2),
    "one PDU session crosses while the other stays": [
        P("created", 0, A), C_("create", 1, A), P("created", 2, A, ref="p2", pdu=2),
        C_("create", 3, A, ref="c2", pdu=2), _pol_at("speed-changed", 10, A, B),
        C_("update", 11, B)],
    "policy associations only": [P("created", 0, A), P("created", 1, B, ref="p2")],
    "a new PDU session on B while A's is open (A's sides released later)": [
        P("created", 0, A), C_("create", 1, A), P("created", 10, B, ref="p2", pdu=2),
        C_("create", 11, B, ref="c2", pdu=2), C_("release", 20, A),
        P("released", 21, A)],
}


@pytest.mark.parametrize("events", TWO_PLACES.values(), ids=TWO_PLACES.keys())
def test_two_pdu_sessions_in_two_places_open_one_case(events: list[Event]) -> None:
    s, fired = run(MULTI, *events)
    assert fired == ["multi_network"]
    assert dict(s.open).keys() == {"multi_network"}


def test_the_evidence_names_each_pdu_session_and_where_it_is() -> None:
    s = SubState(supi=SUPI)
    out = []
    for e in _two(A, B, 1):
        s, ds = evaluate(s, e, e.time, MULTI)
        out += ds
    [d] = out
    assert d.evidence["hostNetworks"] == ["bluepeak", "northwind"]
    assert d.evidence["servingPlmns"] == ["00101", "00102"]
    locs = sorted((x["hostNetwork"], x["servingPlmn"], sorted(x["sessions"]))
                  for x in d.evidence["locations"])
    # It fires as soon as the second PDU session's first side is seen.
    assert locs == [("bluepeak", "00102", ["p:p2"]), ("northwind", "00101", ["c:c1", "p:p1"])]
    assert len(d.evidence["sessions"]) == 3


RELEASED_THEN_OPENED = {
    "both sides released, then opened on B": [
        P("created", 0, A), C_("create", 1, A), C_("release", 10, A), P("released", 11, A),
        P("created", 20, B, ref="p2"), C_("create", 21, B, ref="c2")],
    "charging released, B opens, A's policy deleted last": [
        P("created", 0, A), C_("create", 1, A), C_("release", 10, A),
        P("created", 12, B, ref="p2"), C_("create", 13, B, ref="c2"),
        P("released", 15, A)],
    "policy deleted, B opens, A's charging released last": [
        P("created", 0, A), C_("create", 1, A), P("released", 10, A),
        P("created", 12, B, ref="p2"), C_("create", 13, B, ref="c2"),
        C_("release", 15, A)],
    "charging closed by supervision, B opens with another PDU session id": [
        P("created", 0, A), C_("create", 1, A), C_("supervision_close", 10, A),
        P("created", 12, B, ref="p2", pdu=2), C_("create", 13, B, ref="c2", pdu=2),
        P("terminated", 40, A)],
}


@pytest.mark.parametrize("events", RELEASED_THEN_OPENED.values(),
                         ids=RELEASED_THEN_OPENED.keys())
def test_released_on_a_then_opened_on_b_is_no_case(events: list[Event]) -> None:
    s, fired = run(MULTI, *events)
    assert fired == []
    [g] = pdu_sessions(s.sessions)
    assert {x.serving_plmn for x in g} == {B[1]} and all(x.closed_at is None for x in g)


def test_an_ending_pdu_session_whose_other_side_never_goes_counts_again() -> None:
    """Charging on A is released, B opens, but A's policy association stays: once the
    orphan grace period is over it is in A again (the rule looks on its own, when due)."""
    c = ctx(impossible_travel={"action": "off"}, orphan_session={"action": "off",
                                                                  "grace_s": 60})
    s, fired = run(c, P("created", 0, A), C_("create", 1, A), C_("release", 10, A),
                   P("created", 12, B, ref="p2"), C_("create", 13, B, ref="c2"))
    assert fired == []
    assert due_at(s, c) == T0 + timedelta(seconds=70)
    s2, ds = evaluate(s, Tick(), T0 + timedelta(seconds=69), c)
    assert ds == []
    _, ds = evaluate(s2, Tick(), T0 + timedelta(seconds=70), c)
    assert [d.rule for d in ds] == ["multi_network"]
    assert ds[0].evidence["servingPlmns"] == ["00101", "00102"]


def test_an_ending_pdu_session_is_no_orphan_and_not_counted() -> None:
    c = ctx(impossible_travel={"action": "off"}, multi_network={"action": "off"},
            orphan_session={"action": "case", "grace_s": 60},
            concurrent_sessions={"max_sessions": 1})
    s, fired = run(c, P("created", 0, A), C_("create", 1, A), C_("release", 100, A),
                   P("created", 110, B, ref="p2"), C_("create", 111, B, ref="c2"))
    assert fired == []  # A is ending: one PDU session, and A's policy is no orphan yet
    _, ds = evaluate(s, Tick(), T0 + timedelta(seconds=160), c)
    assert sorted(d.rule for d in ds) == ["concurrent_sessions", "orphan_session"]


def test_pairs_and_ending_pdu_sessions_survive_a_restart() -> None:
    s, _ = run(MULTI, P("created", 0, A), C_("create", 1, A), C_("release", 10, A))
    [g] = pdu_sessions(s.sessions)
    assert sorted(x.closed_at is not None for x in g) == [False, True]
    back = state_from(state_doc(s, T0, None))
    assert back.sessions == s.sessions
    # A state stored before PDU sessions were paired: open sessions, paired again on
    # their next record (here the crossing's first report).
    s, _ = run(MULTI, P("created", 0, A), C_("create", 1, A))
    doc = state_doc(s, T0, None)
    doc["s"] = [x[:7] for x in doc["s"]]
    old = state_from(doc)
    assert all(x.closed_at is None and x.peer is None for x in old.sessions)
    assert len(pdu_sessions(old.sessions)) == 2
    _, fired = run(MULTI, C_("update", 5, B), _pol_at("speed-changed", 6, A, B), st0=old)
    assert fired == []


# -------------------------------------------------------------------------- any interleaving


@st.composite
def crossing(draw: st.DrawFn) -> list[Event]:
    """One PDU session wandering over ``PLACES``: each move is learnt by the PCF and the
    CHF after their own delays (so either may report it first, and a side may report its
    old place after the other reported the new one); each side reports what it knows at
    random times; it ends released on both sides in either order, or goes on."""
    moves = [draw(st.sampled_from(PLACES))]
    times = [0.0]
    for _ in range(draw(st.integers(0, 5))):
        moves.append(draw(st.sampled_from(PLACES)))
        times.append(times[-1] + draw(st.integers(1, 300)))
    end = times[-1] + 400

    def known(lag: list[int], t: float) -> tuple[str, str]:
        seen = [m for m, at, d in zip(moves, times, lag, strict=True) if at + d <= t]
        return seen[-1] if seen else moves[0]

    lags = {side: [0] + [draw(st.integers(0, 200)) for _ in moves[1:]]
            for side in ("policy", "charging")}
    opened = moves[0]
    out = [P("created", 0, opened), C_("create", draw(st.integers(0, 5)), opened)]
    for side in ("policy", "charging"):
        for t in sorted(draw(st.lists(st.integers(6, int(end)), max_size=12))):
            where = known(lags[side], t)
            out.append(_pol_at("speed-changed", t, opened, where) if side == "policy"
                       else C_("update", t, where))
    if draw(st.booleans()):
        first, second = end + 1, end + 1 + draw(st.integers(0, 50))
        if draw(st.booleans()):
            first, second = second, first
        out += [_pol_at("released", first, opened, moves[-1]),
                C_("release", second, moves[-1])]
    return sorted(out, key=lambda e: e.time)


@hyp_settings(max_examples=200, deadline=None)
@given(crossing())
def test_any_crossing_of_one_pdu_session_is_no_case(events: list[Event]) -> None:
    s = SubState(supi=SUPI)
    for e in events:
        s, ds = evaluate(s, e, e.time, MULTI)
        assert ds == [], e
        groups = pdu_sessions(s.sessions)
        assert len(groups) <= 1
        assert sorted(x.key for g in groups for x in g) == sorted(x.key for x in s.sessions)


@st.composite
def two_places(draw: st.DrawFn) -> tuple[list[Event], Context]:
    """Two different PDU sessions, each opened (both sides, in any order, same PDU
    session id or not) in a different place, with any number of reports of where they
    are; the reports of the two interleave in any way."""
    here, there = draw(st.lists(st.sampled_from(PLACES), min_size=2, max_size=2,
                                unique=True))
    pdu2 = draw(st.sampled_from([1, 2]))
    out: list[Event] = []
    for n, (where, pdu) in enumerate(((here, 1), (there, pdu2)), start=1):
        t0 = draw(st.integers(0, 100))
        out += [pol("created", t0 + draw(st.integers(0, 3)), f"p{n}", where[0], where[1],
                    pdu=pdu),
                chg("create", t0 + draw(st.integers(0, 3)), f"c{n}", where[0], where[1],
                    pdu=pdu)]
        for t in draw(st.lists(st.integers(t0 + 4, 500), max_size=5)):
            out.append(chg("update", t, f"c{n}", where[0], where[1]))
    return sorted(out, key=lambda e: e.time), MULTI


@hyp_settings(max_examples=150, deadline=None)
@given(two_places())
def test_two_pdu_sessions_in_two_places_always_open_one_case(
        case: tuple[list[Event], Context]) -> None:
    events, c = case
    _, fired = run(c, *events)
    assert fired == ["multi_network"]
