"""The EDR group-commit writer against the real database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nf.clock import FakeClock
from nf.config import EdrSettings, Settings
from nf.edr.records import Party, SpeedRecord, UnitRecord, charging_record, policy_record
from nf.edr.writer import EdrWriter
from nf.errors import Congestion, NfError, StoreUnavailable
from nf.runtime import Runtime
from nf.store.mongo import Db


def _rt(settings: Settings, db: Db, clock: FakeClock, **edr: Any) -> Runtime:
    s = settings.model_copy(update={"edr": EdrSettings(**edr)})
    return Runtime(settings=s, clock=clock, db=db)


class CountingColl:
    """Wraps the real collection to count insert_many round trips."""

    def __init__(self, coll: Any) -> None:
        self.coll = coll
        self.batches: list[int] = []

    async def insert_many(self, docs: list[dict[str, Any]], **kw: Any) -> Any:
        self.batches.append(len(docs))
        return await self.coll.insert_many(docs, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.coll, name)


def record(i: int, clock: FakeClock, **kw: Any) -> dict[str, Any]:
    return charging_record(
        event="update", time=clock.now(),
        party=Party(supi=f"imsi-00101{i % 3:010d}", gpsi=None, brand="lumen",
                    host_network="northwind", serving_plmn="00101"),
        charging_data_ref=f"ref-{i}", invocation_sequence_number=i, result="SUCCESS",
        units=[UnitRecord(rating_group=10, used_ul=i, used_dl=2 * i, used_total=3 * i,
                          granted=100, debited=(("b1", 3 * i),))], **kw)


async def test_concurrent_writes_share_batches_and_all_are_stored(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock, batch_max=50)
    w = EdrWriter(rt)
    counting = CountingColl(w._coll)
    w._coll = counting  # type: ignore[assignment]
    await w.ensure_indexes()
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0)
    await asyncio.gather(*(w.write(record(i, clock)) for i in range(200)))
    # Every caller returned after its record was stored.
    assert await db["edrs"].count_documents({}) == 200
    assert sum(counting.batches) == 200
    assert len(counting.batches) < 200 and max(counting.batches) <= 50
    rt.stopping.set()
    await asyncio.wait_for(task, 5)
    docs = [d async for d in db["edrs"].find({"charging_data_ref": "ref-7"})]
    d = docs[0]
    assert d["day"] == "2026-01-01" and d["brand"] == "lumen" and d["kind"] == "charging"
    assert d["used_total"] == 21 and d["units"][0]["debited"] == [
        {"bucket_id": "b1", "bytes": 21}]
    names = {ix["name"] async for ix in await db["edrs"].list_indexes()}
    assert {"supi_time", "brand_day"} <= names


async def test_duplicate_record_id_counts_as_stored(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    w = EdrWriter(rt)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0)
    await w.write(record(1, clock, record_id="ref-1:1"))
    await asyncio.gather(w.write(record(1, clock, record_id="ref-1:1")),
                         w.write(record(2, clock, record_id="ref-2:2")))
    assert await db["edrs"].count_documents({}) == 2
    rt.stopping.set()
    await asyncio.wait_for(task, 5)


async def test_buffer_is_bounded(settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock, buffer_max=10)
    w = EdrWriter(rt)
    w._running = True  # a flusher that is not flushing: the buffer fills up
    writes = [asyncio.create_task(w.write(record(i, clock))) for i in range(10)]
    await asyncio.sleep(0)
    with pytest.raises(Congestion):
        await w.write(record(99, clock))
    # Shutdown flushes everything that was accepted.
    rt.stopping.set()
    await asyncio.wait_for(w.run(), 5)
    await asyncio.gather(*writes)
    assert await db["edrs"].count_documents({}) == 10


async def test_write_without_a_running_flusher_stores_directly(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    w = EdrWriter(rt)
    party = Party(supi="imsi-001010000000001", brand="harbor", host_network="bluepeak",
                  serving_plmn="00102", roaming=False)
    await w.write(policy_record(event="throttled", time=clock.now(), party=party,
                                sm_policy_id="p1", speed_before=SpeedRecord(50_000, 100_000),
                                speed_after=SpeedRecord(128, 128), reason="cap"))
    d = await db["edrs"].find_one({"sm_policy_id": "p1"})
    assert d is not None and d["speed_after"] == {"uplink_kbps": 128, "downlink_kbps": 128}
    assert d["kind"] == "policy" and d["event"] == "throttled"


async def test_a_bad_record_fails_alone_and_the_flusher_keeps_going(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """A record the database cannot store (an integer beyond int64, a NUL in a key) fails
    only its own writer: the rest of its batch is stored, nobody waits forever and the
    flusher task does not die."""
    rt = _rt(settings, db, clock, batch_max=50)
    w = EdrWriter(rt)
    await w.ensure_indexes()
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0)
    bad_int = {**record(1000, clock), "used_total": 2**63}
    bad_key = {**record(1001, clock), "extra": {"a\x00b": 1}}
    good = [record(i, clock) for i in range(20)]
    results = await asyncio.wait_for(asyncio.gather(
        *(w.write(r) for r in [*good[:10], bad_int, bad_key, *good[10:]]),
        return_exceptions=True), 10)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 2 and all(isinstance(e, NfError) for e in errors), results
    assert results[10] is errors[0] and results[11] is errors[1]
    assert await db["edrs"].count_documents({}) == 20
    assert not task.done(), "the flusher must survive a bad record"
    # ... and keeps storing afterwards.
    await asyncio.wait_for(w.write(record(2000, clock)), 5)
    assert await db["edrs"].count_documents({}) == 21
    rt.stopping.set()
    await asyncio.wait_for(task, 10)


async def test_a_waiter_gives_up_after_its_deadline(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """With no flusher making progress, a writer gets a 503 after ``wait_timeout_s``."""
    rt = _rt(settings, db, clock, wait_timeout_s=0.2)
    w = EdrWriter(rt)
    w._running = True  # a flusher that never runs
    t0 = asyncio.get_running_loop().time()
    with pytest.raises(StoreUnavailable):
        await w.write(record(1, clock))
    assert asyncio.get_running_loop().time() - t0 < 2


async def test_the_writers_lag_is_measured_from_buffer_to_stored(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """``nf_edr_write_wait_seconds``: from a record entering the buffer to its batch being
    stored, on the injected clock."""
    rt = _rt(settings, db, clock)
    w = EdrWriter(rt)
    w._running = True  # a flusher that is late: the records wait in the buffer
    writes = [asyncio.create_task(w.write(record(i, clock))) for i in range(3)]
    await asyncio.sleep(0)
    clock.advance(0.3)
    assert await w.flush_once() == 3
    await asyncio.gather(*writes)
    text = rt.metrics.render().decode()
    assert "nf_edr_write_wait_seconds_count 3.0" in text
    assert 'nf_edr_write_wait_seconds_bucket{le="0.25"} 0.0' in text
    assert 'nf_edr_write_wait_seconds_bucket{le="0.5"} 3.0' in text
