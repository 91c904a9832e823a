"""MongoLedger against the real database: charges, purchases, families, views."""

from __future__ import annotations

from nf.clock import FakeClock
from nf.config import Settings
from nf.ledger.port import CapState, ChargeResult, RoamingState
from nf.store.mongo import Db
from tests.ledger import helpers as h

MIB = h.MIB


async def test_capped_plan_grants_up_to_the_cap_then_blocks(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    await led.ensure_indexes()
    now = clock.now()
    supi = await h.capped(led, now, "imsi-001010000000001", "testco", "t-capped")
    out = await h.charge(led, supi, now, requested=6 * MIB, seq=1)
    assert out.result is ChargeResult.SUCCESS and out.granted_bytes == 6 * MIB
    assert not out.final
    out = await h.charge(led, supi, now, used=6 * MIB, requested=6 * MIB, seq=2)
    assert out.granted_bytes == 4 * MIB and out.final
    out = await h.charge(led, supi, now, used=4 * MIB, requested=1 * MIB, seq=3)
    assert out.result is ChargeResult.QUOTA_LIMIT_REACHED and out.granted_bytes == 0
    view = await led.subscriber(supi, now)
    assert view is not None and view.counters.data_cap is CapState.EXHAUSTED
    assert view.speed.reason == "blocked" and view.topup_url
    bal = await led.balance(supi, now)
    assert bal is not None and [b.remaining_bytes for b in bal.buckets] == [0]
    # A retry of the latest step gets its answer again; step 2 again is a late duplicate
    # (nothing granted, nothing debited); neither changes the balance.
    again = await h.charge(led, supi, now, used=4 * MIB, requested=1 * MIB, seq=3)
    assert again.replay and again.result is ChargeResult.QUOTA_LIMIT_REACHED
    late = await h.charge(led, supi, now, used=6 * MIB, requested=6 * MIB, seq=2)
    assert late.replay and late.granted_bytes == 0 and not late.committed
    assert await led.balance(supi, now) == bal
    # top-up restores
    changes = await led.purchase(supi, "t-addon-2", now)
    assert changes and changes[0].quota_restored
    assert changes[0].after.data_cap is CapState.NORMAL


async def test_unlimited_throttles_after_cap(db: Db, settings: Settings,
                                             clock: FakeClock) -> None:
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    now = clock.now()
    supi = await h.unlimited(led, now, "imsi-001010000000002", "testco", "t-unlimited")
    out = await h.charge(led, supi, now, requested=20 * MIB, seq=1)
    assert out.granted_bytes == 10 * MIB and out.final and not out.throttled
    out = await h.charge(led, supi, now, used=10 * MIB, requested=5 * MIB, seq=2)
    assert out.throttled and out.granted_bytes == 5 * MIB and not out.final
    assert out.counter_changes and out.counter_changes[0].after.data_cap is CapState.EXHAUSTED
    assert out.counter_changes[0].speed.speed.downlink_kbps == 128


async def test_family_and_roaming(db: Db, settings: Settings, clock: FakeClock) -> None:
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    now = clock.now()
    gid = await h.family(led, now, "imsi-001010000000010", ["imsi-001010000000011"],
                         "testco", "t-family")
    g = await led.group(gid, now)
    assert g is not None and len(g.members) == 2
    out = await h.charge(led, "imsi-001010000000011", now, requested=50 * MIB, seq=1)
    assert out.granted_bytes == 8 * MIB  # member cap
    await led.leave_group("imsi-001010000000011", now)
    v = await led.subscriber("imsi-001010000000011", now)
    assert v is not None and v.group_id is None
    g = await led.group(gid, now)
    assert g is not None and g.buckets[0].reserved == 0
    supi = await h.capped(led, now, "imsi-001010000000003", "testco", "t-capped")
    out = await h.charge(led, supi, now, requested=MIB, plmn=h.NORTH_ZONE_PLMN)
    assert out.result is ChargeResult.RATING_FAILED
    await h.with_roaming_pass(led, now, supi, "t-roam-north")
    v = await led.subscriber(supi, now)
    assert v is not None and v.counters.roaming is RoamingState.AVAILABLE
    out = await h.charge(led, supi, now, requested=5 * MIB, plmn=h.NORTH_ZONE_PLMN, seq=9)
    assert out.granted_bytes == MIB and out.final


async def test_a_request_with_several_rating_groups_is_one_write(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """All rating groups of one charging request, and the close of a release, are decided
    together and stored with one conditional update of the wallet."""
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    now = clock.now()
    supi = await h.capped(led, now, "imsi-001010000000005", "testco", "t-capped")

    async def version() -> int:
        d = await db["ledger_wallets"].find_one({"_id": supi})
        assert d is not None
        return int(d["v"])

    v0 = await version()
    steps = [h.step(supi, now, requested=3 * MIB, session="m", rg=rg, seq=1)
             for rg in (10, 20, 30)]
    outs = await led.charge_request(supi, "m", steps, now)
    assert [o.granted_bytes for o in outs] == [3 * MIB, 3 * MIB, 3 * MIB]
    assert await version() == v0 + 1
    again = await led.charge_request(supi, "m", steps, now)  # a retransmission
    assert all(o.replay for o in again) and await version() == v0 + 1
    used = [h.step(supi, now, used=MIB, session="m", rg=rg, seq=2) for rg in (10, 20)]
    closed = await led.charge_request(supi, "m", used, now, close=True)
    assert [sum(p.bytes for p in o.committed) for o in closed] == [MIB, MIB]
    assert await version() == v0 + 2
    bal = await led.balance(supi, now)
    assert bal is not None
    assert sum(b.used_bytes for b in bal.buckets) == 2 * MIB
    assert sum(b.reserved_bytes for b in bal.buckets) == 0  # rating group 30 released too


async def test_wallets_written_with_op_keys_still_charge(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """Wallets stored by earlier versions hold a list of op keys per member (steps without
    a sequence number): it is ignored, and the wallet charges and reads as any other."""
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    now = clock.now()
    supi = await h.capped(led, now, "imsi-001010000000004", "testco", "t-capped")
    old = {"r": "SUCCESS", "g": MIB, "f": False, "t": False, "ca": "block", "c": [],
           "ov": 0, "rs": []}
    await db["ledger_wallets"].update_one(
        {"_id": supi}, {"$set": {"members.0.ops": [["s1:10:1", old, now]]}})
    led = h.make_ledger(db, settings, h.TEST_CATALOG)  # no cached copy
    out = await h.charge(led, supi, now, requested=6 * MIB, seq=1)
    assert not out.replay and out.granted_bytes == 6 * MIB
    out = await h.charge(led, supi, now, used=6 * MIB, seq=2)
    assert sum(p.bytes for p in out.committed) == 6 * MIB
    bal = await led.balance(supi, now)
    assert bal is not None and [b.used_bytes for b in bal.buckets] == [6 * MIB]
