"""Counter changes as pending effects of ledger writes, against the real database: written
in the same update, delivered at once, left pending when delivery fails or the process is
gone, taken over by the sweeper, delivered to every listener, acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nf.catalog import CatalogHolder
from nf.clock import FakeClock
from nf.config import Settings
from nf.effects import FIELD, Drain, entry
from nf.errors import StoreUnavailable
from nf.ledger.effects import change_doc, change_from, counter_drain
from nf.ledger.mongo import COLLECTION, MongoLedger
from nf.ledger.port import (
    CapState,
    CounterChange,
    PolicyCounters,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
)
from nf.runtime import Runtime
from nf.store.mongo import Db
from tests.ledger import helpers as h

MIB = h.MIB


class Listener:
    def __init__(self, fail: int = 0) -> None:
        self.got: list[CounterChange] = []
        self.fail = fail

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreUnavailable("listener down")
        self.got += changes


def _settings(settings: Settings, immediate: bool) -> Settings:
    fx = settings.effects.model_copy(update={"immediate": immediate, "sweep_grace_s": 1.0})
    return settings.model_copy(update={"effects": fx})


@dataclass
class _Slow:
    """What a drain with a slow listener for the effect ``a1`` delivered, and its gates."""

    seen: list[str] = field(default_factory=list)
    first_in: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, items: Sequence[dict[str, object]]) -> None:
        for it in items:
            if it["n"] == "a1":
                self.first_in.set()
                await self.release.wait()  # a slow listener for document A's first effect
            self.seen.append(str(it["n"]))


def _slow_first_effect(db: Db, settings: Settings, clock: FakeClock
                       ) -> tuple[Runtime, Drain[dict[str, object]], _Slow]:
    rt = Runtime(settings=_settings(settings, True), clock=clock, db=db)
    slow = _Slow()
    return rt, Drain(rt, "fxdocs", "test", decode=dict, deliver=slow.deliver), slow


def _ledger(db: Db, settings: Settings, clock: FakeClock, immediate: bool
            ) -> tuple[Runtime, MongoLedger]:
    s = _settings(settings, immediate)
    rt = Runtime(settings=s, clock=clock, db=db)
    drain = counter_drain(rt)
    led = MongoLedger(db, s, CatalogHolder.from_dir(h.TEST_CATALOG), effects=drain)
    return rt, led


def test_counter_change_round_trip() -> None:
    c = CounterChange(
        supi="imsi-1", before=PolicyCounters(CapState.NORMAL, RoamingState.NONE),
        after=PolicyCounters(CapState.EXHAUSTED, RoamingState.AVAILABLE),
        speed=SpeedView(Speed(64, 128), "boost",
                        boost_ends_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        status=SubscriberStatus.BLOCKED, status_before=SubscriberStatus.ACTIVE,
        quota_restored=True)
    assert change_from(change_doc(c)) == c


async def _pending(db: Db, key: str) -> list[dict[str, object]]:
    d = await db[COLLECTION].find_one({"_id": key})
    assert d is not None
    return list(d.get(FIELD) or [])


async def test_left_behind_is_swept_once_and_acknowledged(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """A process that wrote a crossing and died before delivering it: another process's
    sweeper delivers it to every listener, after the grace time, and only once."""
    _rt, led = _ledger(db, settings, clock, immediate=False)  # the "dead" process
    now = clock.now()
    supi = await h.unlimited(led, now, "imsi-001010000000201", "testco", "t-unlimited")
    await h.charge(led, supi, now, requested=20 * MIB, seq=1)
    out = await h.charge(led, supi, now, used=10 * MIB, requested=5 * MIB, seq=2)
    assert out.counter_changes and out.counter_changes[0].after.data_cap is CapState.EXHAUSTED
    pending = await _pending(db, supi)
    assert len(pending) == 1  # written by the charge's own update

    rt2, _led2 = _ledger(db, settings, clock, immediate=True)
    pcf, slc = Listener(), Listener()
    rt2.counter_listeners += [pcf, slc]
    drain = counter_drain(rt2)
    await drain.ensure_indexes()
    assert await drain.sweep_once() == 0  # younger than the grace time: not taken over
    clock.advance(2)
    assert await drain.sweep_once() == 1
    assert [c.supi for c in pcf.got] == [supi] and pcf.got == slc.got
    assert pcf.got[0] == out.counter_changes[0]
    assert await _pending(db, supi) == []
    assert await drain.sweep_once() == 0


async def test_failed_delivery_stays_pending_and_is_retried(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    rt, led = _ledger(db, settings, clock, immediate=True)
    flaky = Listener(fail=1)
    rt.counter_listeners.append(flaky)
    drain = led._effects
    assert drain is not None
    task = asyncio.create_task(drain.run())
    try:
        now = clock.now()
        supi = await h.capped(led, now, "imsi-001010000000202", "testco", "t-capped")
        await h.charge(led, supi, now, requested=10 * MIB, seq=1)
        await h.charge(led, supi, now, used=10 * MIB, requested=MIB, seq=2)  # cap reached
        for _ in range(100):
            if rt.metrics.effects_failed.labels(drain.name)._value.get():
                break
            await asyncio.sleep(0.02)
        assert flaky.got == [] and len(await _pending(db, supi)) == 1
        clock.advance(2)
        assert await drain.sweep_once() == 1
        assert [c.after.data_cap for c in flaky.got] == [CapState.EXHAUSTED]
        assert await _pending(db, supi) == []
    finally:
        rt.stopping.set()
        await task


async def test_family_changes_survive_a_detach(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """Changes of a pool running dry, and of a member leaving, are pending in the group's
    document (carried through its replacement) until delivered."""
    _rt, led = _ledger(db, settings, clock, immediate=False)
    now = clock.now()
    owner, kid, kid2 = "imsi-001010000000210", "imsi-001010000000211", "imsi-001010000000212"
    gid = await h.family(led, now, owner, [kid, kid2], "testco", "t-family")  # 20 MiB pool
    for k in (kid, kid2):  # each uses up their 8 MiB cap
        await h.charge(led, k, now, requested=8 * MIB, seq=1)
        out = await h.charge(led, k, now, used=8 * MIB, seq=2)
        assert [c.supi for c in out.counter_changes] == [k]
    got4 = await h.charge(led, owner, now, requested=8 * MIB, session="o", seq=1)
    assert got4.granted_bytes == 4 * MIB and got4.final
    dry = await h.charge(led, owner, now, used=4 * MIB, session="o", seq=2)
    assert [c.after.data_cap for c in dry.counter_changes] == [CapState.EXHAUSTED]
    left = await led.leave_group(kid, now)
    key = f"grp:{gid}"
    pending = await _pending(db, key)
    assert len(pending) >= 3 + len(left)  # and the joins' own

    rt2, _ = _ledger(db, settings, clock, immediate=True)
    got = Listener()
    rt2.counter_listeners.append(got)
    clock.advance(2)
    assert await counter_drain(rt2).sweep_once() == len(pending)
    assert {c.supi for c in got.got} >= {owner, kid, kid2}
    assert await _pending(db, key) == []


async def test_a_slow_batch_holds_up_only_its_own_documents_effects(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """Batches are delivered side by side: an effect of another document goes out while a
    slow batch is being delivered (a throttle does not wait behind it), and effects of one
    document keep their order (the second waits for the first)."""
    rt, drain, slow = _slow_first_effect(db, settings, clock)
    seen, first_in, release = slow.seen, slow.first_in, slow.release
    await db.fxdocs.insert_many([{"_id": "A"}, {"_id": "B"}])
    task = asyncio.create_task(drain.run())
    try:
        now = clock.now()
        drain.hand_off("A", [entry({"n": "a1"}, now)])
        await asyncio.wait_for(first_in.wait(), 10)
        drain.hand_off("A", [entry({"n": "a2"}, now)])
        drain.hand_off("B", [entry({"n": "b1"}, now)])
        for _ in range(500):
            if "b1" in seen:
                break
            await asyncio.sleep(0.01)
        # B's effect went out while A's first batch was still being delivered; A's second
        # effect waits behind A's first.
        assert seen == ["b1"]
        release.set()
        for _ in range(500):
            if len(seen) == 3:
                break
            await asyncio.sleep(0.01)
        assert seen == ["b1", "a1", "a2"]
    finally:
        release.set()
        rt.stopping.set()
        await task


async def test_the_backlog_age_is_what_the_sweeper_finds(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """``nf_effects_oldest_pending_seconds``: the age of the oldest entry past the grace
    time in the sweeper's last round; it grows while delivery keeps failing and falls back
    to 0 once nothing is left."""
    _rt, led = _ledger(db, settings, clock, immediate=False)
    now = clock.now()
    supi = await h.capped(led, now, "imsi-001010000000203", "testco", "t-capped")
    await h.charge(led, supi, now, requested=10 * MIB, seq=1)
    await h.charge(led, supi, now, used=10 * MIB, requested=MIB, seq=2)  # cap reached
    rt2, _ = _ledger(db, settings, clock, immediate=True)
    down = Listener(fail=2)
    rt2.counter_listeners.append(down)
    drain = counter_drain(rt2)
    age = rt2.metrics.effects_oldest.labels(drain.name)

    assert await drain.sweep_once() == 0 and age._value.get() == 0.0
    clock.advance(2)
    await drain.sweep_once()  # delivery fails: still pending
    assert age._value.get() == 2.0
    clock.advance(5)
    await drain.sweep_once()
    assert age._value.get() == 7.0 and down.got == []
    clock.advance(1)
    assert await drain.sweep_once() == 1  # delivered now
    assert age._value.get() == 8.0 and len(down.got) == 1
    assert await drain.sweep_once() == 0 and age._value.get() == 0.0


async def test_a_lingering_drain_delivers_what_arrives_meanwhile_as_one_batch(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """EDR drains wait ``effects.edr_linger_s`` for more before delivering a batch that is
    not full: entries handed off one request after the other go out together."""
    rt = Runtime(settings=_settings(settings, True), clock=clock, db=db)
    batches: list[list[str]] = []

    async def deliver(items: Sequence[dict[str, object]]) -> None:
        batches.append([str(it["n"]) for it in items])

    drain: Drain[dict[str, object]] = Drain(rt, "fxdocs", "edr-like", decode=dict,
                                            deliver=deliver, linger_s=0.2)
    await db.fxdocs.insert_many([{"_id": f"D{i}"} for i in range(5)])
    task = asyncio.create_task(drain.run())
    try:
        for i in range(5):
            drain.hand_off(f"D{i}", [entry({"n": f"e{i}"}, clock.now())])
            await asyncio.sleep(0.01)  # another request, a moment later
        for _ in range(300):
            if sum(len(b) for b in batches) == 5:
                break
            await asyncio.sleep(0.01)
        assert batches == [["e0", "e1", "e2", "e3", "e4"]]
    finally:
        rt.stopping.set()
        await task


async def test_a_stop_with_effects_behind_a_batch_in_flight_waits_for_it_and_ends(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """Stopping while a document's second effect waits behind its first (a batch in flight)
    lets that batch finish, delivers the second, and ends: the drain never spins without
    giving the batch in flight its turn."""
    rt, drain, slow = _slow_first_effect(db, settings, clock)
    seen, first_in, release = slow.seen, slow.first_in, slow.release
    await db.fxdocs.insert_many([{"_id": "A"}])
    task = asyncio.create_task(drain.run())
    now = clock.now()
    drain.hand_off("A", [entry({"n": "a1"}, now)])
    await asyncio.wait_for(first_in.wait(), 10)
    drain.hand_off("A", [entry({"n": "a2"}, now)])
    rt.stopping.set()
    asyncio.get_running_loop().call_later(0.2, release.set)
    await asyncio.wait_for(task, 10)
    assert seen == ["a1", "a2"]
