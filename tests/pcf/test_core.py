"""The sans-IO policy core: judgements, decisions, pushes, versions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nf.ledger.port import (
    CapAction,
    CapState,
    PolicyCounters,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
    SubscriberView,
)
from nf.pcf import core
from nf.pcf.core import (
    Answer,
    ContextUpdated,
    Created,
    DefaultQos,
    PolicyRejected,
    PushTerminate,
    PushUpdate,
    Record,
    Released,
    Subscriber,
    SubscriberChanged,
    Verdict,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
QOS = DefaultQos(9, 8)
FULL = Speed(50_000, 50_000)
SLOW = Speed(128, 128)
BOOST = Speed(300_000, 300_000)
BITRATE = re.compile(r"^\d+(\.\d+)? (bps|Kbps|Mbps|Gbps|Tbps)$")


def view(*, speed: Speed = FULL, reason: str = "plan", cap: CapState = CapState.NORMAL,
         roaming: RoamingState = RoamingState.NONE,
         status: SubscriberStatus = SubscriberStatus.ACTIVE, allow_roaming: bool = False,
         boost_ends_at: datetime | None = None) -> SubscriberView:
    return SubscriberView(
        supi="imsi-001010000000001", gpsi="msisdn-15550001", brand="lumen",
        home_network="northwind", home_plmn="00101", status=status, group_id=None,
        counters=PolicyCounters(cap, roaming),
        speed=SpeedView(speed, reason, boost_ends_at), cap_action=CapAction.THROTTLE,
        roaming_allowed_without_pass=allow_roaming)


def sub(v: SubscriberView, zones: frozenset[str] = frozenset()) -> Subscriber:
    return Subscriber(view=v, home_plmns=frozenset({"00101"}), pass_zones=zones)


def created(v: SubscriberView, plmn: str | None = "00101",
            zones: frozenset[str] = frozenset()) -> core.PolicyState:
    j = core.judge(sub(v, zones), plmn, NOW)
    state, _effects = core.decide(None, Created("p1", v.supi, "http://smf/cb", plmn, j), NOW,
                                 QOS)
    assert state is not None
    return state


def test_bitrates_render_in_the_largest_exact_unit() -> None:
    assert core.format_bitrate(128) == "128 Kbps"
    assert core.format_bitrate(50_000) == "50 Mbps"
    assert core.format_bitrate(1_500) == "1500 Kbps"
    assert core.format_bitrate(2_000_000) == "2 Gbps"
    assert core.parse_bitrate("1.5 Mbps") == 1500
    with pytest.raises(ValueError, match="bit rate"):
        core.parse_bitrate("fast")


@given(st.integers(min_value=0, max_value=10**10))
def test_bitrate_round_trips_and_matches_the_3gpp_pattern(kbps: int) -> None:
    text = core.format_bitrate(kbps)
    assert BITRATE.match(text)
    assert core.parse_bitrate(text) == kbps


def test_create_gives_session_rule_with_plan_speed_default_qos_and_triggers() -> None:
    v = view()
    j = core.judge(sub(v), "00101", NOW)
    state, effects = core.decide(None, Created("p1", v.supi, "http://smf/cb", "00101", j),
                                 NOW, QOS)
    assert state is not None and state.version == 1 and not state.roaming
    decision = next(e.decision for e in effects if isinstance(e, Answer))
    rule = decision["sessRules"][core.SESS_RULE_ID]
    assert rule["authSessAmbr"] == {"uplink": "50 Mbps", "downlink": "50 Mbps"}
    assert rule["authDefQos"]["5qi"] == 9 and rule["authDefQos"]["arp"]["priorityLevel"] == 8
    assert {"PLMN_CH", "SE_AMBR_CH"} <= set(decision["policyCtrlReqTriggers"])
    assert decision["pccRules"][core.PCC_RULE_ID]["refQosData"] == [core.QOS_ID]
    assert decision["qosDecs"][core.QOS_ID]["5qi"] == 9
    rec = next(e for e in effects if isinstance(e, Record))
    assert rec.kind == "created" and rec.speed_after == FULL and rec.speed_before is None


@pytest.mark.parametrize(("v", "plmn", "verdict"), [
    (None, "00101", Verdict.DENY_UNKNOWN),
    (view(status=SubscriberStatus.SUSPENDED), "00101", Verdict.DENY_STATUS),
    (view(status=SubscriberStatus.BLOCKED), "00101", Verdict.DENY_STATUS),
    (view(), "20810", Verdict.DENY_ROAMING),
    (view(roaming=RoamingState.AVAILABLE), "20810", Verdict.DENY_ROAMING),  # wrong zone
    (view(roaming=RoamingState.EXHAUSTED), "302720", Verdict.DENY_ROAMING),
])
def test_refused_associations(v: SubscriberView | None, plmn: str, verdict: Verdict) -> None:
    s = sub(v, frozenset({"302720"})) if v is not None else None
    j = core.judge(s, plmn, NOW)
    assert j.verdict is verdict
    with pytest.raises(PolicyRejected) as e:
        core.decide(None, Created("p1", "imsi-1", "http://smf/cb", plmn, j), NOW, QOS)
    assert e.value.verdict is verdict


def test_roaming_with_a_pass_in_zone_or_plan_allowance_is_allowed() -> None:
    in_zone = core.judge(sub(view(roaming=RoamingState.AVAILABLE), frozenset({"302720"})),
                         "302720", NOW)
    assert in_zone.verdict is Verdict.ALLOW and in_zone.roaming
    assert in_zone.reason == "roaming-pass"
    plan = core.judge(sub(view(allow_roaming=True)), "20810", NOW)
    assert plan.verdict is Verdict.ALLOW and plan.roaming
    home = core.judge(sub(view()), None, NOW)
    assert home.verdict is Verdict.ALLOW and not home.roaming


def test_cap_crossing_pushes_throttle_then_addon_pushes_restore() -> None:
    state = created(view())
    j = core.judge(sub(view(speed=SLOW, reason="throttled", cap=CapState.EXHAUSTED)),
                   state.serving_plmn, NOW)
    s2, effects = core.decide(state, SubscriberChanged(j), NOW, QOS)
    assert s2 is not None and s2.version == 2 and s2.speed == SLOW
    push = next(e for e in effects if isinstance(e, PushUpdate))
    assert push.decision["sessRules"][core.SESS_RULE_ID]["authSessAmbr"]["downlink"] \
        == "128 Kbps"
    assert "pccRules" not in push.decision
    rec = next(e for e in effects if isinstance(e, Record))
    assert (rec.kind, rec.speed_before, rec.speed_after) == ("throttled", FULL, SLOW)
    # The same news again changes nothing and pushes nothing.
    s3, again = core.decide(s2, SubscriberChanged(j), NOW, QOS)
    assert s3 == s2 and again == []
    back = core.judge(sub(view()), s2.serving_plmn, NOW)
    s4, effects = core.decide(s2, SubscriberChanged(back), NOW, QOS)
    assert s4 is not None and s4.version == 3 and s4.speed == FULL
    assert next(e for e in effects if isinstance(e, Record)).kind == "restored"


def test_boost_sets_revalidation_time_and_its_end_drops_it() -> None:
    ends = NOW + timedelta(hours=1)
    state = created(view())
    j = core.judge(sub(view(speed=BOOST, reason="boost", boost_ends_at=ends)), "00101", NOW)
    s2, effects = core.decide(state, SubscriberChanged(j), NOW, QOS)
    assert s2 is not None and s2.recheck_at == ends
    push = next(e for e in effects if isinstance(e, PushUpdate))
    assert "RE_TIMEOUT" in push.decision["policyCtrlReqTriggers"]
    assert push.decision["revalidationTime"].endswith("Z")
    later = ends + timedelta(seconds=1)
    j2 = core.judge(sub(view()), "00101", later)
    s3, effects = core.decide(s2, SubscriberChanged(j2), later, QOS)
    assert s3 is not None and s3.speed == FULL and s3.recheck_at is None
    assert any(isinstance(e, PushUpdate) for e in effects)


def test_blocked_subscriber_gets_terminated() -> None:
    state = created(view())
    j = core.judge(sub(view(status=SubscriberStatus.BLOCKED)), "00101", NOW)
    s2, effects = core.decide(state, SubscriberChanged(j), NOW, QOS)
    assert s2 is not None and not s2.active
    assert any(isinstance(e, PushTerminate) and e.cause == "UE_SUBSCRIPTION"
               for e in effects)
    # An ended policy ignores everything afterwards.
    assert core.decide(s2, SubscriberChanged(j), NOW, QOS) == (s2, [])


def test_update_moving_to_a_network_without_pass_asks_the_smf_to_release() -> None:
    state = created(view())
    j = core.judge(sub(view()), "20810", NOW)
    s2, effects = core.decide(state, ContextUpdated("20810", j), NOW, QOS)
    assert s2 is not None and not s2.active
    assert next(e for e in effects if isinstance(e, Answer)).decision == {
        "relCause": "UE_SUBSCRIPTION"}


def test_release_and_gone_record_the_end() -> None:
    state = created(view())
    s2, effects = core.decide(state, Released(gone=True), NOW, QOS)
    assert s2 is not None and not s2.active
    rec = next(e for e in effects if isinstance(e, Record))
    assert rec.kind == "terminated" and rec.speed_before == FULL and rec.speed_after is None


speeds = st.sampled_from([(FULL, "plan"), (SLOW, "throttled"), (BOOST, "boost")])


@given(st.lists(speeds, min_size=1, max_size=30))
def test_any_sequence_ends_on_the_last_speed_with_versions_only_rising(
        seq: list[tuple[Speed, str]]) -> None:
    state = created(view())
    pushed = [state.speed]
    for speed, reason in seq:
        j = core.judge(sub(view(speed=speed, reason=reason)), "00101", NOW)
        new, effects = core.decide(state, SubscriberChanged(j), NOW, QOS)
        assert new is not None and new.version >= state.version
        if any(isinstance(e, PushUpdate) for e in effects):
            assert new.version == state.version + 1
            pushed.append(new.speed)
        state = new
    assert state.speed == seq[-1][0]
    assert pushed[-1] == seq[-1][0]  # what the SMF was last told is the current speed


def test_a_plan_that_blocks_at_the_cap_keeps_the_session_for_the_chf_to_gate() -> None:
    state = created(view())
    j = core.judge(sub(view(reason="blocked", cap=CapState.EXHAUSTED)), "00101", NOW)
    assert j.verdict is Verdict.ALLOW
    s2, effects = core.decide(state, SubscriberChanged(j), NOW, QOS)
    assert s2 is not None and s2.active and s2.speed == FULL
    assert not any(isinstance(e, PushTerminate | PushUpdate) for e in effects)
