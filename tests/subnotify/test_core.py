"""The pure parts of subscriber notices: which events fire, their keys, texts, encodings,
quiet hours, and the ledger's usage and purchase marks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nf.ledger import marks
from nf.ledger.port import (
    CapAction,
    CapState,
    CounterChange,
    PolicyCounters,
    PurchaseMark,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
    UsageMark,
)
from nf.ledger.state import Bucket, Member, Terms, Wallet
from nf.subnotify import events, quiet, templates, text
from nf.subnotify.events import Kind
from nf.subnotify.holder import Holder, dead_predecessor

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIB = 1024 * 1024
NORMAL = PolicyCounters(CapState.NORMAL, RoamingState.NONE)
EXHAUSTED = PolicyCounters(CapState.EXHAUSTED, RoamingState.NONE)
FAST = SpeedView(Speed(2000, 10000), "plan")
SLOW = SpeedView(Speed(64, 128), "throttled")
CTX = events.Context(supi="imsi-1", brand="b", period_start=T0, period_end=T0 + timedelta(30))


def change(before: PolicyCounters = NORMAL, after: PolicyCounters = NORMAL,
           speed: SpeedView = FAST, **kw: object) -> CounterChange:
    return CounterChange(supi="imsi-1", before=before, after=after, speed=speed,
                         **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- GSM / UCS-2


def test_gsm7_single_part_up_to_160_septets() -> None:
    assert text.encode("a" * 160, 1).parts == (b"a" * 160,)
    e = text.encode("a" * 161, 9)
    assert e.dcs == text.DCS_GSM7 and [len(p) for p in e.parts] == [159, 14]
    assert [p[:6] for p in e.parts] == [bytes([5, 0, 3, 9, 2, 1]), bytes([5, 0, 3, 9, 2, 2])]


def test_extension_characters_count_double_and_are_never_split() -> None:
    e = text.encode("€" * 80, 0)  # 160 septets: fits in one
    assert len(e.parts) == 1 and e.parts[0] == b"\x1be" * 80
    e = text.encode("x" + "€" * 80, 0)  # 161: two parts, no escape cut in half
    assert all(not p.endswith(b"\x1b") for p in e.parts)
    assert text.decode_gsm7(b"".join(p[6:] for p in e.parts)) == "x" + "€" * 80


def test_ucs2_when_a_character_is_outside_gsm() -> None:
    e = text.encode("día", 0)
    assert e.dcs == text.DCS_UCS2 and e.parts == ("día".encode("utf-16-be"),)
    e = text.encode("í" * 71, 3)
    assert [len(p) for p in e.parts] == [6 + 134, 6 + 8]


def test_surrogate_pairs_stay_whole() -> None:
    e = text.encode("😀" * 40, 0)  # 160 octets: two parts
    bodies = [p[6:] for p in e.parts]
    assert b"".join(bodies).decode("utf-16-be") == "😀" * 40
    assert all(len(b) % 4 == 0 for b in bodies)


@given(st.text(max_size=600))
def test_parts_reassemble_to_the_text(s: str) -> None:
    e = text.encode(s, 7)
    body = b"".join(p[6:] if e.udh else p for p in e.parts)
    got = text.decode_gsm7(body) if e.dcs == text.DCS_GSM7 else body.decode("utf-16-be")
    assert got == s
    limit = 160 if e.dcs == text.DCS_GSM7 else 140
    assert all(len(p) <= limit for p in e.parts)


# ---------------------------------------------------------------------------- events


def test_usage_fires_the_highest_threshold_crossed_once_per_period() -> None:
    u = UsageMark("plan", 10 * MIB, 4 * MIB, 9 * MIB, T0, T0 + timedelta(30), (50, 80))
    got = events.notices_for(change(usage=u), CTX, T0, timedelta(hours=24))
    assert [(n.kind, n.params["pct"]) for n in got] == [(Kind.USAGE, 80)]
    assert got[0].key == f"imsi-1|usage|80|{T0.isoformat()}"
    nxt = replace(u, period_start=T0 + timedelta(30))
    assert events.notices_for(change(usage=nxt), CTX, T0, timedelta(0))[0].key != got[0].key


def test_pool_usage_goes_to_the_owner() -> None:
    u = UsageMark("pool", 20 * MIB, 0, 10 * MIB, T0, None, (50,), owner="imsi-9")
    (n,) = events.notices_for(change(usage=u), CTX, T0, timedelta(0))
    assert (n.kind, n.supi, n.subject) == (Kind.POOL_USAGE, "imsi-9", "imsi-1")


def test_cap_reached_names_the_action() -> None:
    got = events.notices_for(change(NORMAL, EXHAUSTED, SLOW), CTX, T0, timedelta(0))
    assert [(n.kind, n.params["speed"]) for n in got] == [(Kind.CAP_THROTTLED, 128)]
    blk = SpeedView(Speed(2000, 10000), "blocked")
    assert [n.kind for n in events.notices_for(change(NORMAL, EXHAUSTED, blk), CTX, T0,
                                               timedelta(0))] == [Kind.CAP_BLOCKED]
    red = replace(CTX, block_action="REDIRECT")
    assert [n.kind for n in events.notices_for(change(NORMAL, EXHAUSTED, blk), red, T0,
                                               timedelta(0))] == [Kind.CAP_REDIRECTED]


def test_a_second_throttle_after_a_new_addon_is_a_new_notice() -> None:
    c = change(NORMAL, EXHAUSTED, SLOW)
    first = events.notices_for(c, CTX, T0, timedelta(0))[0].key
    again = events.notices_for(c, CTX, T0, timedelta(0))[0].key
    later = events.notices_for(c, replace(CTX, holdings=("bkt-1",)), T0, timedelta(0))[0].key
    assert first == again != later


def test_purchase_fires_bought_then_restored_and_schedules_reminders() -> None:
    p = PurchaseMark("t-addon", "addon", "bkt-7", 2 * MIB, T0 + timedelta(days=7), T0)
    got = events.notices_for(change(EXHAUSTED, NORMAL, purchase=p), CTX, T0,
                             timedelta(hours=24))
    assert [(n.kind, n.due_at) for n in got] == [
        (Kind.ADDON_PURCHASED, T0), (Kind.ADDON_EXPIRING, T0 + timedelta(days=6)),
        (Kind.ADDON_EXPIRED, T0 + timedelta(days=7)), (Kind.SPEED_RESTORED, T0)]
    assert got[1].marketing and not got[0].marketing and got[3].urgent
    # A pass shorter than the lead time gets no "expiring" reminder.
    short = replace(p, kind="roaming_pass", valid_to=T0 + timedelta(hours=12))
    assert [n.kind for n in events.notices_for(change(purchase=short), CTX, T0,
                                               timedelta(hours=24))] == [
        Kind.PASS_PURCHASED, Kind.PASS_EXPIRED]


def test_status_and_roaming_notices() -> None:
    c = change(status=SubscriberStatus.SUSPENDED, status_before=SubscriberStatus.ACTIVE)
    assert [n.kind for n in events.notices_for(c, CTX, T0, timedelta(0))] == [Kind.SUSPENDED]
    r = change(PolicyCounters(CapState.NORMAL, RoamingState.AVAILABLE),
               PolicyCounters(CapState.NORMAL, RoamingState.EXHAUSTED))
    assert [n.kind for n in events.notices_for(r, CTX, T0, timedelta(0))] == [
        Kind.ROAMING_EXHAUSTED]
    assert not events.may_fire(change())


def test_cap_and_throttle_notices_are_never_marketing() -> None:
    for k in (Kind.CAP_THROTTLED, Kind.CAP_BLOCKED, Kind.CAP_REDIRECTED, Kind.USAGE):
        assert k not in events.MARKETING


# ---------------------------------------------------------------------------- quiet hours


def test_quiet_hours_hold_until_the_local_morning() -> None:
    tz = "Europe/Madrid"  # UTC+1 in March before the switch
    night = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # 23:30 local
    assert quiet.release_at(night, tz, "21:00", "08:00") == datetime(2026, 3, 2, 7, 0,
                                                                     tzinfo=UTC)
    early = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 06:00 local
    assert quiet.release_at(early, tz, "21:00", "08:00") == datetime(2026, 3, 2, 7, 0,
                                                                     tzinfo=UTC)
    day = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert quiet.release_at(day, tz, "21:00", "08:00") == day
    assert quiet.release_at(night, tz, None, None) == night


# ---------------------------------------------------------------------------- templates


def test_templates_render_human_units_and_local_dates() -> None:
    got = templates.render("{brand}: {pct}% of {allowance} ({used}), renews {renews}; "
                           "{speed}; {topup}",
                           {"pct": 80, "allowance": 10 * 1024**3, "used": 8 * 1024**3 + 1,
                            "renews": datetime(2026, 3, 31, 23, 30, tzinfo=UTC),
                            "speed": 128},
                           brand="Lumen", tz="Europe/Madrid", topup="*123#", offer_name=None)
    assert got == "Lumen: 80% of 10 GB (8 GB), renews 01 Apr 2026; 128 kbps; *123#"


def test_template_errors_name_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "notices").mkdir()
    (tmp_path / "notices" / "b.yaml").write_text(
        "default_language: en\ntemplates:\n  en:\n    usage: 'used {pct}% {oops}'\n"
        "    nonsense: 'x'\n    cap_blocked: '" + "y" * 1001 + "'\n  xx1: {}\n")
    (tmp_path / "notices" / "ghost.yaml").write_text("templates: {en: {usage: x}}\n")
    with pytest.raises(templates.TemplateError) as e:
        templates.load_dir(tmp_path, {"b"})
    probs = "\n".join(e.value.problems)
    assert "notices/b.yaml: templates.en.usage: unknown placeholder {oops}" in probs
    assert "notices/b.yaml: templates.en.nonsense: unknown event" in probs
    assert "notices/b.yaml: templates.en.cap_blocked: longer than 1000 characters" in probs
    assert "notices/b.yaml: templates.xx1: not a two-letter language code" in probs
    assert "notices/ghost.yaml: no brand 'ghost' in the catalogue" in probs


def test_language_falls_back_to_the_brand_default() -> None:
    bt, probs = templates.parse("x", {"default_language": "en", "templates": {
        "en": {"usage": "used {pct}%"}, "es": {"usage": "usado {pct}%"}}})
    assert bt is not None and not probs
    assert bt.pick(Kind.USAGE, "es") == ("es", "usado {pct}%")
    assert bt.pick(Kind.USAGE, "fr") == ("en", "used {pct}%")
    assert bt.pick(Kind.CAP_BLOCKED, "es") is None


def test_the_shipped_templates_are_valid() -> None:
    from nf.catalog import load_catalog

    root = Path(__file__).parents[2]
    for d in (root / "nf" / "demo" / "catalog", root / "tests" / "ledger" / "catalog"):
        got = templates.load_dir(d, set(load_catalog(d).brands))
        assert got, d


# ---------------------------------------------------------------------------- ledger marks


def _wallet(used: int, start: datetime = T0) -> Wallet:
    terms = Terms(offer_id="p", offer_version=1, kind="plan", period_days=30,
                  allowance=10 * MIB, speed=Speed(1, 1), cap_action=CapAction.THROTTLE,
                  throttle_speed=Speed(1, 1))
    m = Member(supi="imsi-1", brand="b", home_network="n", plan=terms, period_start=start,
               period_end=start + timedelta(30))
    b = Bucket(id="plan-1", kind="plan", offer_id="p", offer_version=1, quota=10 * MIB,
               valid_from=start, valid_to=None, owner="imsi-1", used=used)
    return Wallet(id="imsi-1", members=(m,), buckets=(b,))


def test_usage_mark_only_when_a_threshold_is_crossed() -> None:
    def pct(_o: str) -> tuple[int, ...]:
        return (50, 80, 100)

    assert marks.usage_mark(_wallet(0), _wallet(4 * MIB), "imsi-1", pct) is None
    m = marks.usage_mark(_wallet(4 * MIB), _wallet(10 * MIB), "imsi-1", pct)
    assert m is not None and m.crossed == (50, 80, 100) and m.scope == "plan"
    assert marks.usage_mark(_wallet(5 * MIB), _wallet(6 * MIB), "imsi-1", pct) is None
    # A new period starts from zero.
    renewed = _wallet(6 * MIB, T0 + timedelta(30))
    m = marks.usage_mark(_wallet(9 * MIB), renewed, "imsi-1", pct)
    assert m is not None and m.crossed == (50,) and m.used_before == 0


def test_marks_ride_on_a_change_or_make_one() -> None:
    p = PurchaseMark("a", "addon", "b1", 1, None, T0)
    w = _wallet(0)
    (c,) = marks._for("imsi-1", (), w, T0, purchase=p)
    assert c.before == c.after and c.purchase == p
    base = change(NORMAL, EXHAUSTED, SLOW)
    (c2,) = marks._for("imsi-1", (base,), w, T0, purchase=p)
    assert c2.after == EXHAUSTED and c2.purchase == p
    assert marks.crossed((50, 80), 100, 49, 50) == (50,)
    assert marks.crossed((50, 80), 100, 50, 79) == ()


def test_first_use_of_a_roaming_pass_fires_once() -> None:
    def pct(_o: str) -> tuple[int, ...]:
        return (50,)

    pas = Bucket(id="pass-1", kind="roaming", offer_id="t-roam", offer_version=1,
                 quota=MIB, valid_from=T0, valid_to=T0 + timedelta(days=1), owner="imsi-1",
                 zone=("99970",))
    w0 = replace(_wallet(0), buckets=(*_wallet(0).buckets, pas))
    w1 = replace(w0, buckets=(w0.buckets[0], replace(pas, used=1000)))
    w2 = replace(w0, buckets=(w0.buckets[0], replace(pas, used=2000)))
    m = marks.usage_mark(w0, w1, "imsi-1", pct)
    assert m is not None and (m.scope, m.offer_id, m.period_end) == (
        "roaming", "t-roam", T0 + timedelta(days=1))
    assert marks.usage_mark(w1, w2, "imsi-1", pct) is None
    (n,) = events.notices_for(change(usage=m), CTX, T0, timedelta(0))
    assert n.kind is Kind.PASS_ACTIVATED and n.params["offer_id"] == "t-roam"


def test_only_gone_processes_of_this_instance_on_this_host_are_predecessors() -> None:
    me = Holder("nf-1", "host-a", 100, "now")
    alive = {100, 101}.__contains__
    assert dead_predecessor(replace(me, pid=200, token="t1"), me, alive)  # gone
    assert dead_predecessor(replace(me, token="t0"), me, alive)  # this pid, earlier life
    assert not dead_predecessor(replace(me, pid=101, token="t1"), me, alive)  # running
    assert not dead_predecessor(me, me, alive)  # this very process
    assert not dead_predecessor(replace(me, pid=200, token="t1", instance="nf-2"), me, alive)
    assert not dead_predecessor(replace(me, pid=200, token="t1", host="host-b"), me, alive)
    assert Holder.of(me.doc()) == me and Holder.of({"pid": "x"}) is None
