"""The fraud rules as pure functions: each rule fires on what it should and not otherwise,
a record applied twice changes nothing, and (hypothesis) the usage and purchase rules agree
with a brute-force reference over any sequence of events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from nf.fraud.rules import (
    Context,
    Event,
    SubState,
    Tick,
    due_at,
    evaluate,
    needs_plan_class,
    resolved,
    window_usage,
)
from nf.settings.fraud import RULES, FraudRules, FraudSettings

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SUPI = "imsi-999001000000022"
GIB = 1024**3


def ctx(**rules: dict[str, object]) -> Context:
    data = FraudRules().model_dump()
    for k, v in rules.items():
        data[k] = {**data[k], **v}
    return Context(rules=FraudRules.model_validate(data), late_window_s=10)


_n = iter(range(10**9))


def ev(kind: str, event: str, t: float, **kw: object) -> Event:
    return Event(id=f"e{next(_n)}", kind=kind, event=event,
                 time=T0 + timedelta(seconds=t), supi=SUPI, brand="orbit", **kw)  # type: ignore[arg-type]


def run(c: Context, *events: Event, st0: SubState | None = None
        ) -> tuple[SubState, list[str]]:
    s = st0 or SubState(supi=SUPI)
    fired: list[str] = []
    for e in events:
        s, ds = evaluate(s, e, e.time, c)
        fired += [d.rule for d in ds]
    return s, fired


def pol(event: str, t: float, ref: str, net: str, plmn: str, pdu: int = 1) -> Event:
    return ev("policy", event, t, ref=ref, host_network=net, serving_plmn=plmn,
              pdu_session_id=pdu)


def chg(event: str, t: float, ref: str, net: str, plmn: str, pdu: int | None = None,
        used: int = 0) -> Event:
    return ev("charging", event, t, ref=ref, host_network=net, serving_plmn=plmn,
              pdu_session_id=pdu, used_total=used, result="SUCCESS")


def test_two_host_networks_at_once_fire_once_with_the_evidence() -> None:
    c = ctx(impossible_travel={"action": "off"})
    a = pol("created", 0, "p1", "redmoor", "999001")
    b = pol("created", 5, "p2", "northwind", "00101")
    s, fired = run(c, a, b)
    assert fired == ["multi_network"]
    s2, again = run(c, pol("speed-changed", 6, "p2", "northwind", "00101"), st0=s)
    assert again == []  # a case is open: no second detection
    _, d = evaluate(s, b, b.time, c)
    assert d == []  # the same EDR again changes nothing
    # Once resolved as a false positive, the rule is quiet for the cool-down.
    cid = dict(s2.open)["multi_network"]
    s3 = resolved(s2, "multi_network", cid, T0 + timedelta(seconds=7), True, 3600)
    _, later = run(c, pol("speed-changed", 8, "p1", "redmoor", "999001"), st0=s3)
    assert later == []


def test_one_network_sequential_sessions_and_neighbours_do_not_fire() -> None:
    c = ctx(impossible_travel={"action": "off"},
            multi_network={"neighbours": [("00101", "00103")]})
    _, fired = run(c, pol("created", 0, "p1", "northwind", "00101"),
                   pol("released", 10, "p1", "northwind", "00101"),
                   pol("created", 20, "p2", "bluepeak", "00102"))
    assert fired == []
    _, fired = run(c, pol("created", 0, "p1", "northwind", "00101"),
                   pol("created", 1, "p2", "northwind", "00103", pdu=2))
    assert fired == []
    # The PCF and the CHF of one PDU session report a PLMN change one after the other.
    _, fired = run(c, pol("created", 0, "p1", "northwind", "00101"),
                   chg("create", 0, "c1", "northwind", "00101", pdu=1),
                   pol("speed-changed", 5, "p1", "northwind", "00104"))
    assert fired == []


def test_more_pdu_sessions_than_allowed() -> None:
    c = ctx(concurrent_sessions={"max_sessions": 2}, orphan_session={"action": "off"})
    evs = [pol("created", i, f"p{i}", "northwind", "00101", pdu=i) for i in range(1, 4)]
    # charging and policy of the same PDU session count once
    evs.insert(1, chg("create", 1, "c1", "northwind", "00101", pdu=1))
    _, fired = run(c, *evs)
    assert fired == ["concurrent_sessions"]


def test_impossible_travel_by_country_not_by_network() -> None:
    c = ctx(impossible_travel={"min_travel_s": 3600}, multi_network={"action": "off"})
    _, fired = run(c, chg("create", 0, "c1", "northwind", "00101"),
                   chg("release", 60, "c1", "northwind", "00101"),
                   chg("create", 120, "c2", "redmoor", "999001"))
    assert fired == ["impossible_travel"]
    # Two networks of one country; or enough time between countries.
    _, fired = run(c, chg("create", 0, "c1", "northwind", "00101"),
                   chg("create", 30, "c2", "bluepeak", "00102"))
    assert fired == []
    _, fired = run(c, chg("create", 0, "c1", "northwind", "00101"),
                   chg("create", 3601, "c2", "redmoor", "999001"))
    assert fired == []
    # Several MCCs may be one country.
    c2 = Context(rules=c.rules, mcc_countries={"001": "x", "999": "x"})
    _, fired = run(c2, chg("create", 0, "c1", "northwind", "00101"),
                   chg("create", 30, "c2", "redmoor", "999001"))
    assert fired == []


def test_crossing_a_land_border_back_and_forth_is_no_travel() -> None:
    borders = {"min_travel_s": 3600, "borders": [("999", "001")]}
    c = ctx(impossible_travel=borders, multi_network={"action": "off"})
    _, fired = run(c, chg("create", 0, "c1", "northwind", "00101"),
                   chg("release", 60, "c1", "northwind", "00101"),
                   chg("create", 120, "c2", "redmoor", "999001"),
                   chg("release", 180, "c2", "redmoor", "999001"),
                   chg("create", 240, "c3", "northwind", "00101"))
    assert fired == []
    # A third country without a border to the last one still fires.
    _, fired = run(c, chg("create", 0, "c1", "northwind", "00101"),
                   chg("release", 60, "c1", "northwind", "00101"),
                   chg("create", 120, "c2", "redmoor", "999001"),
                   chg("release", 180, "c2", "redmoor", "999001"),
                   chg("create", 240, "c3", "farland", "42001"))
    assert fired == ["impossible_travel"]


def test_usage_velocity_per_plan_class() -> None:
    c = ctx(usage_velocity={"window_s": 600, "max_bytes": {"default": 10 * GIB,
                                                            "router": 50 * GIB}},
            multi_network={"action": "off"})
    open_ = chg("create", 0, "c1", "northwind", "00101")
    s, fired = run(c, open_, chg("update", 60, "c1", "northwind", "00101", used=6 * GIB))
    assert fired == []
    nxt = chg("update", 120, "c1", "northwind", "00101", used=6 * GIB)
    assert needs_plan_class(s, nxt, c)
    _, fired = run(Context(rules=c.rules, plan_class="router"), nxt, st0=s)
    assert fired == []
    _, fired = run(c, nxt, st0=s)
    assert fired == ["usage_velocity"]
    # Outside the window the old usage does not count.
    _, fired = run(c, chg("update", 60 + 700, "c1", "northwind", "00101", used=6 * GIB),
                   st0=s)
    assert fired == []


def test_purchase_velocity() -> None:
    c = ctx(purchase_velocity={"max_purchases": 3, "window_s": 600})
    buys = [ev("purchase", "bought", i * 10, offer_id="orbit-addon") for i in range(4)]
    _, fired = run(c, *buys)
    assert fired == ["purchase_velocity"]
    slow = [ev("purchase", "bought", i * 300, offer_id="orbit-addon") for i in range(6)]
    _, fired = run(c, *slow)
    assert fired == []


def test_charging_without_policy_beyond_the_grace_period() -> None:
    c = ctx(orphan_session={"action": "case", "grace_s": 60})
    s, fired = run(c, chg("create", 0, "c1", "northwind", "00101", pdu=5))
    assert fired == [] and due_at(s, c) == T0 + timedelta(seconds=60)
    s2, ds = evaluate(s, Tick(), T0 + timedelta(seconds=30), c)
    assert ds == []
    _, ds = evaluate(s2, Tick(), T0 + timedelta(seconds=61), c)
    assert [d.rule for d in ds] == ["orphan_session"]
    # With its policy association, no orphan.
    s, _ = run(c, chg("create", 0, "c1", "northwind", "00101", pdu=5),
               pol("created", 1, "p1", "northwind", "00101", pdu=5))
    assert due_at(s, c) is None
    _, ds = evaluate(s, Tick(), T0 + timedelta(seconds=600), c)
    assert ds == []


def test_record_only_repeats_after_its_interval_and_off_never_fires() -> None:
    c = ctx(multi_network={"action": "record"}, impossible_travel={"action": "off"},
            orphan_session={"action": "off"})
    c = Context(rules=c.rules, repeat_after_s=100)
    _, fired = run(c, pol("created", 0, "p1", "redmoor", "999001"),
                   pol("created", 1, "p2", "northwind", "00101"),
                   pol("speed-changed", 50, "p2", "northwind", "00101"),
                   pol("speed-changed", 150, "p2", "northwind", "00101"))
    assert fired == ["multi_network", "multi_network"]
    c = ctx(multi_network={"action": "off"}, impossible_travel={"action": "off"})
    _, fired = run(c, pol("created", 0, "p1", "redmoor", "999001"),
                   pol("created", 1, "p2", "northwind", "00101"))
    assert fired == []


def test_a_bad_brand_override_names_its_key() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"brands\.orbit\.rules"):
        FraudSettings.model_validate({"brands": {"orbit": {"rules": {
            "usage_velocity": {"window_s": 5}}}}})


def test_brand_overrides_merge_over_the_defaults() -> None:
    fs = FraudSettings.model_validate({"brands": {"orbit": {"rules": {
        "usage_velocity": {"window_s": 120}}}}})
    assert fs.rules_for("orbit").usage_velocity.window_s == 120
    assert fs.rules_for("orbit").usage_velocity.max_bytes == \
        fs.rules.usage_velocity.max_bytes
    assert fs.rules_for("lumen").usage_velocity.window_s == 3600



def test_a_brands_rules_are_validated_once_with_the_settings() -> None:
    # ``rules_for`` runs for every EDR the reader looks at: it hands out the rules built when
    # the settings were loaded, not a copy validated again on each call.
    fs = FraudSettings.model_validate({"brands": {"orbit": {"rules": {
        "usage_velocity": {"window_s": 120}}}}})
    assert fs.rules_for("orbit") is fs.rules_for("orbit")
    assert fs.rules_for("lumen") is fs.rules
    # The rules are named once: the brand overrides accept exactly the rules there are.
    assert set(RULES) == set(FraudRules.model_fields)

events_st = st.lists(
    st.tuples(st.sampled_from(["use", "buy", "dup"]), st.integers(0, 400),
              st.integers(0, 3 * GIB)),
    min_size=1, max_size=40)


@hyp_settings(max_examples=150, deadline=None)
@given(events_st)
def test_velocity_rules_agree_with_a_reference(steps: list[tuple[str, int, int]]) -> None:
    """In time order: usage in the window and purchases in the window are what a
    brute-force count says (the window's bins may add at most one bin's worth of age),
    re-applied records change nothing, and the rules fire exactly when the reference
    crosses the limit (at most once: the case stays open)."""
    window, limit, max_buys = 600, 4 * GIB, 3
    c = ctx(usage_velocity={"window_s": window, "max_bytes": {"default": limit}},
            purchase_velocity={"window_s": window, "max_purchases": max_buys},
            multi_network={"action": "off"}, impossible_travel={"action": "off"},
            orphan_session={"action": "off"})
    s = SubState(supi=SUPI)
    t = 0
    uses: list[tuple[int, int]] = []
    buys: list[int] = []
    last: Event | None = None
    fired: list[str] = []
    for kind, dt, n in sorted(steps, key=lambda x: x[1]):
        t = max(t, dt * 10)
        if kind == "dup" and last is not None:
            s2, ds = evaluate(s, last, last.time, c)
            assert ds == [] and s2.usage == s.usage and s2.purchases == s.purchases
            continue
        e = chg("update", t, "c1", "northwind", "00101", used=n) if kind == "use" else \
            ev("purchase", "bought", t, offer_id="x")
        s, ds = evaluate(s, e, e.time, c)
        fired += [d.rule for d in ds]
        last = e
        if kind == "use":
            uses.append((t, n))
            exact = sum(x for ut, x in uses if ut > t - window)
            loose = sum(x for ut, x in uses if ut > t - window - 10)
            got = window_usage(s, e.time, window)
            assert exact <= got <= loose
            if exact > limit:
                assert "usage_velocity" in fired
        else:
            buys.append(t)
            assert len(s.purchases) == min(max_buys + 1,
                                           len([b for b in buys if b > t - window]))
            if len([b for b in buys if b > t - window]) > max_buys:
                assert "purchase_velocity" in fired
    assert fired.count("usage_velocity") <= 1 and fired.count("purchase_velocity") <= 1
    if "usage_velocity" in fired:
        assert any(sum(x for ut, x in uses if t0 - window - 10 < ut <= t0) > limit
                   for t0, _ in uses)
