"""Time on the real database with a FakeClock: reservation expiry, period renewal with
rollover, add-on and boost expiry, and the sweepers publishing the changes."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from nf.clock import FakeClock
from nf.config import Settings
from nf.ledger.part import LedgerPart
from nf.ledger.port import CapState, ChargeResult, CounterChange
from nf.runtime import Runtime
from nf.store.mongo import Db
from tests.ledger import helpers as h

MIB = h.MIB
DAY = 86_400


async def test_reservation_expires_and_is_swept(db: Db, settings: Settings,
                                                clock: FakeClock) -> None:
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    await led.ensure_indexes()
    supi = await h.capped(led, clock.now(), "imsi-001010000000001", "testco", "t-capped")
    out = await h.charge(led, supi, clock.now(), requested=10 * MIB, ttl_s=60)
    assert out.granted_bytes == 10 * MIB and out.final
    clock.advance(61)
    await led.sweep_due("res", clock.now(), 100)
    raw = await db["ledger_wallets"].find_one({"_id": supi})
    assert raw is not None and raw["res"] == {} and raw["buckets"][0]["r"] == 0
    # The quota is free again for another session.
    out = await h.charge(led, supi, clock.now(), requested=MIB, session="s2")
    assert out.granted_bytes == MIB


async def test_renewal_with_rollover_restores_quota(db: Db, settings: Settings,
                                                    clock: FakeClock) -> None:
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    supi = await h.capped(led, clock.now(), "imsi-001010000000002", "testco", "t-capped")
    # Use 7 of 10 MiB: 3 MiB roll over (max 5).
    await h.charge(led, supi, clock.now(), requested=7 * MIB, seq=1)
    await h.charge(led, supi, clock.now(), used=7 * MIB, seq=2)
    clock.advance(30 * DAY)
    bal = await led.balance(supi, clock.now())
    assert bal is not None
    plan = next(b for b in bal.buckets if b.kind == "plan")
    assert plan.quota_bytes == 13 * MIB and plan.used_bytes == 0
    # Exhaust it in the second period; the third period gets no rollover.
    await h.charge(led, supi, clock.now(), requested=13 * MIB, seq=3)
    out = await h.charge(led, supi, clock.now(), used=13 * MIB, requested=MIB, seq=4)
    assert out.result is ChargeResult.QUOTA_LIMIT_REACHED
    assert out.counter_changes and out.counter_changes[0].after.data_cap is CapState.EXHAUSTED
    clock.advance(30 * DAY)
    changes = await led.sweep_due("life", clock.now(), 100)
    assert [c.supi for c in changes] == [supi] and changes[0].quota_restored
    bal = await led.balance(supi, clock.now())
    assert bal is not None
    assert next(b for b in bal.buckets if b.kind == "plan").quota_bytes == 10 * MIB


async def test_subscription_keeps_the_version_it_bought(
        db: Db, settings: Settings, clock: FakeClock, tmp_path: Path) -> None:
    for f in h.TEST_CATALOG.glob("*.yaml"):  # brand files (not notices/)
        shutil.copy(f, tmp_path / f.name)
    led = h.make_ledger(db, settings, tmp_path)
    old = await h.capped(led, clock.now(), "imsi-001010000000003", "testco", "t-capped")
    text = (tmp_path / "testco.yaml").read_text()
    (tmp_path / "testco.yaml").write_text(text.replace(
        "{id: t-capped, version: 1, kind: plan, name: Capped 10 MiB, period_days: 30,\n"
        "   allowance_mb: 10,",
        "{id: t-capped, version: 2, kind: plan, name: Capped 20 MiB, period_days: 30,\n"
        "   allowance_mb: 20,"))
    led.catalog.reload()
    new = await h.capped(led, clock.now(), "imsi-001010000000005", "testco", "t-capped")
    clock.advance(30 * DAY)
    for supi, version, quota in ((old, 1, 15 * MIB), (new, 2, 25 * MIB)):
        got = await led.wallet(supi, clock.now())
        assert got is not None and got[1].plan is not None
        assert got[1].plan.offer_version == version
        plan = next(b for b in got[0].buckets if b.kind == "plan")
        assert plan.quota == quota  # allowance of its version + 5 MiB rollover


async def test_addon_and_boost_expire_and_sweeper_publishes(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    rt = Runtime(settings=settings, clock=clock, db=db)
    got: list[CounterChange] = []

    class Listener:
        async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
            got.extend(changes)

    rt.counter_listeners.append(Listener())
    part = LedgerPart(rt, h.make_ledger(db, settings, h.TEST_CATALOG).catalog)
    led = part.ledger
    await part.ensure_indexes()
    supi = await h.subscriber(led, clock.now(), "imsi-001010000000004", None, "testco")
    await led.purchase(supi, "t-addon-2", clock.now())
    changes = await led.purchase(supi, "t-boost", clock.now())
    assert changes[0].speed.reason == "boost"
    clock.advance(3601)  # the boost ends with no traffic
    workers = part.workers()  # the renewal sweeper; the changes leave as pending effects
    tasks = [asyncio.create_task(workers[1]()), asyncio.create_task(part.effects.run())]
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.02)
    rt.stopping.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert got and got[0].supi == supi and got[0].speed.reason == "plan"
    clock.advance(7 * DAY)
    changes = await led.sweep_due("life", clock.now(), 100)
    assert changes and changes[0].after.data_cap is CapState.EXHAUSTED
    bal = await led.balance(supi, clock.now())
    assert bal is not None and bal.buckets == ()


async def test_a_second_boost_within_the_hour_tells_the_stacked_end(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """Two one-hour boosts bought 20 minutes apart run until 2 h after the first: the
    second purchase's mark (what the notice says) carries that end, the one the balance
    shows, not the purchase time plus one hour."""
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    await led.ensure_indexes()
    supi = await h.subscriber(led, clock.now(), "imsi-001010000000006", "t-unlimited",
                             "testco")
    start = clock.now()
    first = await led.purchase(supi, "t-boost", start)
    assert [c.purchase.valid_to for c in first if c.purchase] == [start + timedelta(hours=1)]
    clock.advance(20 * 60)
    second = await led.purchase(supi, "t-boost", clock.now())
    ends = start + timedelta(hours=2)
    assert [c.purchase.valid_to for c in second if c.purchase] == [ends]
    assert second[0].speed.boost_ends_at == ends
