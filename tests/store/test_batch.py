"""Group commit of conditional updates (``nf.store.batch``) against the real database:
updates ready together travel in one bulk write, and each caller learns whether its own
update landed, also when others in the same batch did not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

from pymongo import AsyncMongoClient

from nf.config import Settings
from nf.errors import Congestion, StoreUnavailable
from nf.store.batch import TOKEN, UpdateBatcher
from nf.store.mongo import Collection, Db, Doc


@contextlib.asynccontextmanager
async def running(b: UpdateBatcher) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(b.run(stop))
    await asyncio.sleep(0)
    try:
        yield
    finally:
        stop.set()
        await task


def _upd(b: UpdateBatcher, v: int, **fields: object) -> tuple[Doc, int]:
    token = b.token()
    return {"$set": {"v": v + 1, TOKEN: token, **fields}}, token


async def _seed(db: Db, n: int) -> None:
    await db.docs.insert_many([{"_id": f"d{i}", "v": 1, "x": 0} for i in range(n)])


async def test_updates_ready_together_are_one_bulk_write(db: Db) -> None:
    await _seed(db, 8)
    b = UpdateBatcher(db.docs, batch_max=64, in_flight_max=1)
    async with running(b):
        calls = []
        for i in range(8):
            upd, tok = _upd(b, 1, x=i)
            calls.append(b.update(f"d{i}", {"_id": f"d{i}", "v": 1}, upd, tok))
        assert await asyncio.gather(*calls) == [True] * 8
    assert (b.batches, b.updates) == (1, 8)
    docs = {d["_id"]: d async for d in db.docs.find()}
    assert all(docs[f"d{i}"]["x"] == i and docs[f"d{i}"]["v"] == 2 for i in range(8))


async def test_each_caller_learns_its_own_outcome_in_a_mixed_batch(db: Db) -> None:
    """Stale versions, and two updates of one document from the same version: exactly one
    of those two lands, and each caller is told which."""
    await _seed(db, 4)
    b = UpdateBatcher(db.docs, in_flight_max=1)
    async with running(b):
        ups = [_upd(b, 1, x="a"), _upd(b, 1, x="b"), _upd(b, 7, x="stale"),
               _upd(b, 1, x="c")]
        keys = ["d0", "d0", "d1", "d2"]
        versions = [1, 1, 7, 1]
        got = await asyncio.gather(*(
            b.update(k, {"_id": k, "v": v}, u, t)
            for k, v, (u, t) in zip(keys, versions, ups, strict=True)))
    assert b.batches == 1
    d0 = await db.docs.find_one({"_id": "d0"})
    assert d0 is not None
    assert got[0] != got[1]  # one of the two on d0, and the right one
    assert d0["x"] == ("a" if got[0] else "b")
    assert got[2] is False and got[3] is True
    d1 = await db.docs.find_one({"_id": "d1"})
    assert d1 is not None and d1["x"] == 0 and d1["v"] == 1


async def test_a_landed_update_overwritten_before_the_check_reads_as_not_landed(
        db: Db) -> None:
    """Told apart by the token: an update that landed and was overwritten by another writer
    before the batch's check is reported as not landed (its caller reads again and decides
    again; the ledger's steps recognise themselves by their sequence numbers)."""
    await _seed(db, 2)

    class OverwrittenBeforeTheCheck:
        """The real collection; another writer's update of d0 lands just before the read
        that checks the batch."""

        def bulk_write(self, *a: Any, **k: Any) -> Any:
            return db.docs.bulk_write(*a, **k)

        def find(self, *a: Any, **k: Any) -> Any:
            async def rows() -> AsyncIterator[Doc]:
                await db.docs.update_one({"_id": "d0"}, {"$set": {"v": 3, TOKEN: 0}})
                async for d in db.docs.find(*a, **k):
                    yield d
            return rows()

    b = UpdateBatcher(cast(Collection, OverwrittenBeforeTheCheck()), in_flight_max=1)
    async with running(b):
        u1, t1 = _upd(b, 1, x="mine")
        u2, t2 = _upd(b, 5, x="stale")  # the batch comes up short: a check follows
        got = await asyncio.gather(b.update("d0", {"_id": "d0", "v": 1}, u1, t1),
                                   b.update("d1", {"_id": "d1", "v": 5}, u2, t2))
    assert b.batches == 1
    d0 = await db.docs.find_one({"_id": "d0"})
    assert d0 is not None and d0["x"] == "mine"  # it did land, and was overwritten
    assert got == [False, False]


async def test_without_the_worker_each_update_is_written_alone(db: Db) -> None:
    await _seed(db, 1)
    b = UpdateBatcher(db.docs)
    u, t = _upd(b, 1, x=1)
    assert await b.update("d0", {"_id": "d0", "v": 1}, u, t) is True
    assert await b.update("d0", {"_id": "d0", "v": 1}, u, t) is False
    assert b.batches == 0


async def test_a_full_queue_answers_congestion(db: Db) -> None:
    await _seed(db, 3)
    b = UpdateBatcher(db.docs, queue_max=2, in_flight_max=1)
    async with running(b):
        ups = [_upd(b, 1) for _ in range(3)]
        results = await asyncio.gather(
            *(b.update(f"d{i}", {"_id": f"d{i}", "v": 1}, u, t)
              for i, (u, t) in enumerate(ups)), return_exceptions=True)
    assert results[:2] == [True, True]
    assert isinstance(results[2], Congestion)


async def test_a_failed_batch_fails_every_caller(settings: Settings) -> None:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&timeoutMS=300")
    try:
        b = UpdateBatcher(client["nowhere"]["docs"], in_flight_max=1)
        async with running(b):
            ups = [_upd(b, 1) for _ in range(3)]
            results = await asyncio.gather(
                *(b.update(f"d{i}", {"_id": f"d{i}", "v": 1}, u, t)
                  for i, (u, t) in enumerate(ups)), return_exceptions=True)
    finally:
        await client.close()
    assert all(isinstance(r, StoreUnavailable) for r in results), results


async def test_a_cancelled_caller_does_not_break_its_batch(db: Db) -> None:
    await _seed(db, 2)
    b = UpdateBatcher(db.docs, in_flight_max=1)
    async with running(b):
        u0, t0 = _upd(b, 1, x="gone")
        u1, t1 = _upd(b, 1, x="kept")
        gone = asyncio.ensure_future(b.update("d0", {"_id": "d0", "v": 1}, u0, t0))
        kept = asyncio.ensure_future(b.update("d1", {"_id": "d1", "v": 1}, u1, t1))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept is True
    with contextlib.suppress(asyncio.CancelledError):
        await gone
    # The cancelled caller's update was queued already: it is written all the same (as a
    # single update in flight would be), and nobody is left waiting.
    d0 = await db.docs.find_one({"_id": "d0"})
    assert d0 is not None and d0["x"] == "gone"
