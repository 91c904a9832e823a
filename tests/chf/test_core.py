"""The CHF's pure decisions: sequencing, grant sizing, answers at the cap, notifications."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from nf.chf import core
from nf.chf.core import RgState, Sequencing, Session, Terms, UnitRequest
from nf.ledger.port import (
    CapAction,
    CapState,
    ChargeOutcome,
    ChargeResult,
    CounterChange,
    PolicyCounters,
    Portion,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TERMS = Terms("northwind", 10_000, 600, 20, 30)
SESSION = Session(ref="r1", supi="imsi-001010000000001", gpsi=None, brand="lumen",
                  home_network="northwind", home_plmn="00101", host_network="northwind",
                  serving_plmn="00101", roaming=False, notify_uri="http://smf/notify",
                  final_action="REDIRECT", topup_url="https://lumen.example/top-up",
                  validity_time_s=600, last_isn=3, reply=None)


def outcome(result: ChargeResult = ChargeResult.SUCCESS, granted: int = 0, *,
            final: bool = False, cap: CapAction | None = CapAction.BLOCK) -> ChargeOutcome:
    return ChargeOutcome(result=result, granted_bytes=granted, final=final, throttled=False,
                         cap_action=cap, committed=(Portion("b1", 5),))


def test_sequence_numbers() -> None:
    assert core.check_sequence(SESSION, 4) is Sequencing.PROCEED
    assert core.check_sequence(SESSION, 9) is Sequencing.PROCEED
    assert core.check_sequence(SESSION, 3) is Sequencing.REPLAY
    assert core.check_sequence(SESSION, 2) is Sequencing.REJECT


@given(st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)))
def test_requested_is_bounded_by_the_network_grant(requested: int | None) -> None:
    asked = core.requested_bytes(UnitRequest(10, requested), TERMS)
    if requested is None:
        assert asked == 0
    elif requested == 0:
        assert asked == TERMS.default_grant_bytes
    else:
        assert 0 < asked <= min(requested, TERMS.default_grant_bytes)


def test_steps_carry_the_sequence_number_and_release_asks_nothing() -> None:
    units = [UnitRequest(10, 0, 1, 2, 3), UnitRequest(20, 500)]
    steps = core.charge_steps(SESSION, 4, units, TERMS, NOW, 60)
    assert [(s.session_id, s.rating_group, s.sequence) for s in steps] == [
        (SESSION.ref, 10, 4), (SESSION.ref, 20, 4)]
    assert [s.requested_bytes for s in steps] == [10_000, 500]
    assert steps[0].used_bytes == 3
    assert (steps[0].reservation_expires_at - NOW).total_seconds() == 660
    closing = core.charge_steps(SESSION, 5, units, TERMS, NOW, 60, closing=True)
    assert [s.requested_bytes for s in closing] == [0, 0]


def test_grant_has_validity_threshold_and_holding_time() -> None:
    d = core.decide(SESSION, 4, [UnitRequest(10, 0)], [outcome(granted=10_000)], TERMS,
                    status=200)
    u = d.answer.units[0]
    assert (u.result, u.granted, u.validity_time_s, u.volume_quota_threshold,
            u.quota_holding_time_s, u.final_action) == ("SUCCESS", 10_000, 600, 2_000, 30,
                                                       None)
    assert d.session.last_isn == 4 and d.session.rgs[10] == RgState()
    assert d.records[0].debited == (("b1", 5),)


def test_last_grant_before_a_blocking_cap_carries_the_final_unit_indication() -> None:
    d = core.decide(SESSION, 4, [UnitRequest(10, 0)], [outcome(granted=123, final=True)],
                    TERMS, status=200)
    u = d.answer.units[0]
    assert u.granted == 123 and u.final_action == "REDIRECT"
    assert u.redirect_url == "https://lumen.example/top-up"
    assert d.session.rgs[10].final and d.answer.result == "SUCCESS"


def test_throttling_plan_gets_no_final_unit_indication() -> None:
    d = core.decide(SESSION, 4, [UnitRequest(10, 0)],
                    [outcome(granted=123, final=True, cap=CapAction.THROTTLE)], TERMS,
                    status=200)
    assert d.answer.units[0].final_action is None


def test_quota_limit_reached_terminates_without_top_up_address() -> None:
    s = replace(SESSION, final_action="REDIRECT", topup_url=None)
    d = core.decide(s, 4, [UnitRequest(10, 0)],
                    [outcome(ChargeResult.QUOTA_LIMIT_REACHED, final=True)], TERMS,
                    status=200)
    u = d.answer.units[0]
    assert (u.result, u.granted, u.final_action) == ("QUOTA_LIMIT_REACHED", None, "TERMINATE")
    assert d.session.rgs[10] == RgState(refused=True, final=True)
    assert d.answer.result == "QUOTA_LIMIT_REACHED"


def test_release_answers_nothing_and_closes() -> None:
    d = core.decide(SESSION, 4, [UnitRequest(10, None, 1, 1, 2)], [outcome()], TERMS,
                    status=204, closing=True)
    assert d.answer.units == () and not d.session.open
    assert d.records[0].used_total == 2


def test_refusals_at_create() -> None:
    unknown = core.refuse_subscriber(None, 0, [UnitRequest(10, 0)])
    assert unknown is not None and unknown.status == 404
    assert unknown.refusal is not None and unknown.refusal.cause == "USER_UNKNOWN"
    assert unknown.units[0].result == "USER_UNKNOWN"


def _change(**kw: object) -> CounterChange:
    counters = PolicyCounters(CapState.NORMAL, RoamingState.NONE)
    base = {"supi": SESSION.supi, "before": counters, "after": counters,
            "speed": SpeedView(Speed(1, 1), "plan")}
    return CounterChange(**{**base, **kw})  # type: ignore[arg-type]


def test_reauthorization_only_for_refused_or_final_rating_groups() -> None:
    refused = replace(SESSION, rgs={10: RgState(refused=True, final=True), 20: RgState()})
    fine = replace(SESSION, ref="r2", rgs={10: RgState()})
    gone = replace(SESSION, ref="r3", rgs={10: RgState(refused=True)}, notify_uri=None)
    targets = core.reauthorization_targets(_change(quota_restored=True), [refused, fine, gone])
    assert [(s.ref, rgs) for s, rgs in targets] == [("r1", [10])]
    assert core.reauthorization_targets(_change(), [refused]) == []


def test_abort_when_blocked() -> None:
    blocked = _change(status=SubscriberStatus.BLOCKED)
    assert [s.ref for s in core.abort_targets(blocked, [SESSION])] == ["r1"]
    again = _change(status=SubscriberStatus.BLOCKED, status_before=SubscriberStatus.BLOCKED)
    assert core.abort_targets(again, [SESSION]) == []


def test_ref_is_stable_for_a_retransmitted_create() -> None:
    a = core.charging_data_ref("imsi-1", "smf-a", 7, 1, "2026-01-01T00:00:00+00:00")
    assert a == core.charging_data_ref("imsi-1", "smf-a", 7, 1, "2026-01-01T00:00:00+00:00")
    assert a != core.charging_data_ref("imsi-1", "smf-a", 8, 1, "2026-01-01T00:00:00+00:00")
