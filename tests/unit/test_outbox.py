"""The persisted outbox against the real database and a real HTTP/2 receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from nf.clock import FakeClock
from nf.config import NotifySettings, Settings
from nf.errors import Congestion
from nf.notify.outbox import MongoOutbox
from nf.notify.policy import Outcome
from nf.notify.port import Notification
from nf.runtime import Runtime
from nf.store.mongo import Db
from tests.peers import NotificationReceiver, Reply


def _rt(settings: Settings, db: Db, clock: FakeClock, **notify: Any) -> Runtime:
    cfg = {"poll_interval_s": 0.05, "initial_backoff_s": 1.0, "max_backoff_s": 30.0,
           "lease_s": 10.0, "request_timeout_s": 2.0, **notify}
    s = settings.model_copy(update={"notify": NotifySettings(**cfg)})
    return Runtime(settings=s, clock=clock, db=db)


@asynccontextmanager
async def sender(outbox: MongoOutbox, rt: Runtime) -> AsyncIterator[None]:
    task = asyncio.create_task(outbox.run())
    try:
        yield
    finally:
        rt.stopping.set()
        await asyncio.wait_for(task, 10)
        rt.stopping.clear()


async def eventually(cond: Callable[[], Any], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = cond()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def until_count(db: Db, query: dict[str, Any], n: int) -> None:
    async def reached() -> bool:
        return await db["outbox"].count_documents(query) == n

    await eventually(reached)


def note(uri: str, n: int = 0, **kw: Any) -> Notification:
    return Notification(kind="test.kind", uri=uri, body={"n": n}, **kw)


async def test_delivers_over_http2_and_marks_sent(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    await outbox.ensure_indexes()
    async with NotificationReceiver() as rx, sender(outbox, rt):
        await outbox.enqueue([note(rx.url("/a"), 1, resource="r1", supi="imsi-1")])
        got = await rx.wait_for_all(None, 10, count=1)
        assert got[0].json == {"n": 1} and got[0].path == "/a"
        assert got[0].http_version == "2"
        await until_count(db, {"status": "sent"}, 1)
    doc = await db["outbox"].find_one({})
    assert doc is not None and doc["status"] == "sent" and doc["attempts"] == 0
    assert doc["lease_owner"] is None
    sample = rt.metrics.registry.get_sample_value(
        "nf_notifications_total", {"kind": "test.kind", "outcome": "sent"})
    assert sample == 1.0


async def test_retries_after_500_with_backoff(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    async with NotificationReceiver() as rx, sender(outbox, rt):
        rx.respond("/r", Reply(503), times=1)
        rx.respond("/r", Reply(500), times=1)
        await outbox.enqueue([note(rx.url("/r"))])
        await rx.wait_for_all(None, 10, count=1)
        await until_count(db, {"attempts": 1}, 1)
        doc = await db["outbox"].find_one({})
        assert doc is not None and doc["status"] == "pending"
        delay = (doc["due_at"] - clock.now()).total_seconds()
        assert 0.5 <= delay <= 1.0  # initial backoff 1 s with equal jitter
        # Not before it is due: nothing more arrives while the clock stands still.
        outbox.wake()
        await asyncio.sleep(0.2)
        assert len(rx.requests) == 1
        clock.advance(1.0)
        outbox.wake()
        await rx.wait_for_all(None, 10, count=2)
        await until_count(db, {"attempts": 2}, 1)
        doc = await db["outbox"].find_one({})
        assert doc is not None
        second_delay = (doc["due_at"] - clock.now()).total_seconds()
        assert 1.0 <= second_delay <= 2.0  # doubled
        clock.advance(2.0)
        outbox.wake()
        await rx.wait_for_all(None, 10, count=3)
        await until_count(db, {"status": "sent"}, 1)
    assert [r.status for r in rx.requests] == [500, 503, 204]


async def test_dead_after_max_attempts_and_4xx_is_permanent(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock, max_attempts=2, initial_backoff_s=0.1)
    outbox = MongoOutbox(rt)
    async with NotificationReceiver(default=Reply(500)) as rx, sender(outbox, rt):
        rx.respond("/bad", Reply(400))
        await outbox.enqueue([note(rx.url("/x")), note(rx.url("/bad"))])
        await until_count(db, {"status": "dead"}, 1)  # the 400, at once
        await until_count(db, {"attempts": 1, "status": "pending"}, 1)  # the 500, once
        clock.advance(1)
        outbox.wake()
        await until_count(db, {"status": "dead"}, 2)
    dead = {d["uri"].rsplit("/", 1)[1]: d async for d in db["outbox"].find({})}
    assert dead["x"]["attempts"] == 2 and dead["bad"]["attempts"] == 1
    assert dead["bad"]["last_error"] == "HTTP 400"
    assert len([r for r in rx.requests if r.path == "/x"]) == 2


async def test_404_calls_gone_handler_and_stops(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    gone: list[Notification] = []

    async def handler(n: Notification) -> None:
        gone.append(n)

    outbox.on_gone("test.kind", handler)
    async with NotificationReceiver() as rx, sender(outbox, rt):
        rx.respond("/g", Reply(404))
        await outbox.enqueue([note(rx.url("/g"), resource="ref-1")])
        await eventually(lambda: gone)
        await until_count(db, {"status": "gone"}, 1)
        clock.advance(3600)
        outbox.wake()
        await asyncio.sleep(0.2)
    assert gone[0].resource == "ref-1"
    assert len(rx.requests) == 1


async def test_coalescing_latest_wins_before_sending(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    async with NotificationReceiver() as rx:
        for i in range(3):
            await outbox.enqueue([note(rx.url("/c"), i, coalesce_key="k1")])
        async with sender(outbox, rt):
            await rx.wait_for_all(None, 10, count=1)
            await until_count(db, {"status": "sent"}, 1)
            await asyncio.sleep(0.2)
    assert [r.json["n"] for r in rx.requests] == [2]
    assert await db["outbox"].count_documents({}) == 1


async def test_coalescing_never_sends_older_after_newer(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    async with NotificationReceiver(default=Reply(204, delay_s=0.3)) as rx, sender(outbox, rt):
        await outbox.enqueue([note(rx.url("/o"), 0, coalesce_key="k")])
        await asyncio.sleep(0.1)  # 0 is in flight now (the receiver takes 0.3 s)
        for i in (1, 2, 3):
            await outbox.enqueue([note(rx.url("/o"), i, coalesce_key="k")])
        await rx.wait_for_all(None, 10, count=2)
        await until_count(db, {"status": "sent"}, 1)
        await asyncio.sleep(0.4)
    order = [r.json["n"] for r in rx.requests]
    assert order == [0, 3]


async def test_restart_loses_nothing(settings: Settings, db: Db, clock: FakeClock) -> None:
    async with NotificationReceiver() as rx:
        rt1 = _rt(settings, db, clock)
        first = MongoOutbox(rt1)
        await first.enqueue([note(rx.url(f"/s{i}"), i) for i in range(5)])
        # The first process dies before its sender ever ran.
        rt2 = _rt(settings, db, clock)
        second = MongoOutbox(rt2)
        async with sender(second, rt2):
            await rx.wait_for_all(None, 10, count=5)
            await until_count(db, {"status": "sent"}, 5)
    assert sorted(r.json["n"] for r in rx.requests) == [0, 1, 2, 3, 4]


async def test_expired_lease_of_a_crashed_sender_is_taken_over(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock, lease_s=10.0)
    outbox = MongoOutbox(rt)
    async with NotificationReceiver() as rx:
        await outbox.enqueue([note(rx.url("/l"))])
        lease = clock.now().replace(microsecond=0)
        from datetime import timedelta

        await db["outbox"].update_many({}, {"$set": {
            "lease_owner": "crashed", "lease_until": lease + timedelta(seconds=10)}})
        async with sender(outbox, rt):
            outbox.wake()
            await asyncio.sleep(0.3)
            assert rx.requests == []  # still leased by the crashed process
            clock.advance(11)
            outbox.wake()
            await rx.wait_for_all(None, 10, count=1)


async def test_two_senders_never_send_the_same_item_twice(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt_a, rt_b = _rt(settings, db, clock), _rt(settings, db, clock)
    a, b = MongoOutbox(rt_a), MongoOutbox(rt_b)
    async with NotificationReceiver(default=Reply(204, delay_s=0.01)) as rx:
        await a.enqueue([note(rx.url(f"/d{i}"), i) for i in range(60)])
        # b learns of the items only by polling; a has them on its fast path.
        async with sender(a, rt_a), sender(b, rt_b):
            await rx.wait_for_all(None, 10, count=60)
            await until_count(db, {"status": "sent"}, 60)
            await asyncio.sleep(0.2)
    numbers = [r.json["n"] for r in rx.requests]
    assert sorted(numbers) == list(range(60))  # each exactly once


async def test_full_outbox_refuses_with_congestion(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock, outbox_max_pending=10)
    outbox = MongoOutbox(rt)
    await outbox.enqueue([note("http://127.0.0.1:9/x", i) for i in range(10)])
    with pytest.raises(Congestion) as e:
        await outbox.enqueue([note("http://127.0.0.1:9/x", 99)])
    assert e.value.status == 503 and e.value.cause == "NF_CONGESTION"
    assert await db["outbox"].count_documents({}) == 10
    # A fresh process learns the backlog from the database before it accepts more.
    rt2 = _rt(settings, db, clock, outbox_max_pending=10)
    assert await MongoOutbox(rt2).pending_count() == 10


async def test_enqueue_wakes_the_sender_without_waiting_for_a_poll(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock, poll_interval_s=60.0)
    outbox = MongoOutbox(rt)
    async with NotificationReceiver() as rx, sender(outbox, rt):
        await asyncio.sleep(0.2)  # the sender has polled once and sleeps for a minute now
        await outbox.enqueue([note(rx.url("/w"), 7)])
        got = await rx.wait_for_all(None, 10, count=1)  # far less than the poll interval
        assert got[0].json == {"n": 7}


async def test_stopping_finishes_the_sends_in_flight(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    async with NotificationReceiver(default=Reply(204, delay_s=0.5)) as rx:
        task = asyncio.create_task(outbox.run())
        await outbox.enqueue([note(rx.url("/f"), 1)])
        await rx.wait_for_all(None, 10, count=1)  # arrived; the answer takes 0.5 s
        rt.stopping.set()
        await asyncio.wait_for(task, 10)
        doc = await db["outbox"].find_one({})
        assert doc is not None and doc["status"] == "sent" and doc["lease_owner"] is None
        # A notification enqueued after the stop stays stored for the next process.
        await outbox.enqueue([note(rx.url("/f"), 2)])
        assert await db["outbox"].count_documents({"status": "pending"}) == 1


async def test_an_unstorable_notification_is_a_dead_letter_and_the_rest_go_out(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """One notification of a batch that cannot be stored (an integer beyond int64) is
    kept as ``dead`` with the reason; the others of the same enqueue are sent."""
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    await outbox.ensure_indexes()
    async with NotificationReceiver() as rx, sender(outbox, rt):
        bad = Notification(kind="test.kind", uri=rx.url("/bad"), body={"n": 2**63})
        await asyncio.wait_for(outbox.enqueue(
            [note(rx.url("/a"), 1), bad, note(rx.url("/b"), 2, coalesce_key="k")]), 10)
        got = await rx.wait_for_all(None, 10, count=2)
        assert sorted(g.path for g in got) == ["/a", "/b"]
        await until_count(db, {"status": "sent"}, 2)
    dead = await db["outbox"].find_one({"status": "dead"})
    assert dead is not None and "cannot be stored" in dead["last_error"]
    assert await db["outbox"].count_documents({}) == 3


async def test_diameter_pushes_are_left_to_the_process_holding_the_peer(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """The HTTP sender sends the HTTP notification and never a ``diameter://`` one (it
    cannot); only a claim for the peer's Origin-Host gets that one, and a pre-existing
    document without the routing field is still the HTTP sender's."""
    rt = _rt(settings, db, clock)
    outbox = MongoOutbox(rt)
    gone: list[Notification] = []

    async def handler(n: Notification) -> None:
        gone.append(n)

    outbox.on_gone("test.kind", handler)
    pcef = "diameter://pgw1.host.example/pgw1%3B1%3B7/update"
    async with NotificationReceiver() as rx:
        await outbox.enqueue([note(pcef, 1, resource="gx-1")])
        assert outbox.diameter_wake.is_set()
        await db["outbox"].insert_one({
            "kind": "test.kind", "uri": rx.url("/old"), "body": {"n": 0}, "status": "pending",
            "attempts": 0, "due_at": clock.now(), "enqueued_at": clock.now(), "version": 1,
            "lease_until": None, "lease_owner": None})
        async with sender(outbox, rt):
            await outbox.enqueue([note(rx.url("/h"), 2)])
            await rx.wait_for_all(None, 10, count=2)
            await until_count(db, {"status": "sent"}, 2)
            await asyncio.sleep(0.2)
        assert sorted(r.path for r in rx.requests) == ["/h", "/old"]
    doc = await db["outbox"].find_one({"resource": "gx-1"})
    assert doc is not None and doc["status"] == "pending" and doc["lease_owner"] is None
    assert doc["diameter_peer"] == "pgw1.host.example"

    assert await outbox.claim_diameter(["pgw2.host.example"], 10) == []
    claimed = await outbox.claim_diameter(["pgw1.host.example"], 10)
    assert [d["_id"] for d in claimed] == [doc["_id"]]
    assert await outbox.claim_diameter(["pgw1.host.example"], 10) == []  # leased
    # No answer from the peer: tried again later, with the HTTP sender's backoff.
    await outbox.settle(claimed[0], Outcome.RETRY, "no connection")
    doc = await db["outbox"].find_one({"resource": "gx-1"})
    assert doc is not None and doc["attempts"] == 1 and doc["lease_owner"] is None
    assert await outbox.claim_diameter(["pgw1.host.example"], 10) == []  # not yet due
    clock.advance(1.0)
    again = await outbox.claim_diameter(["pgw1.host.example"], 10)
    # The peer no longer knows the session (5002): the kind's gone-handler runs.
    await outbox.settle(again[0], Outcome.GONE, "Result-Code 5002")
    assert [n.resource for n in gone] == ["gx-1"]
    assert await db["outbox"].count_documents({"status": "gone"}) == 1


async def test_a_diameter_push_whose_peer_is_connected_nowhere_fails_after_a_grace(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """Not taken by any process for the grace: a failed try each time, dead at the end."""
    rt = _rt(settings, db, clock, max_attempts=2, initial_backoff_s=1.0)
    outbox = MongoOutbox(rt)
    await outbox.enqueue([note("diameter://pgw1.host.example/s%3B1/update", 1),
                          note("diameter://pgw2.host.example/s%3B2/update", 2),
                          note("http://smf.example/n", 3)])
    assert await outbox.claim_diameter_stranded([], 10.0, 10) == []  # not stranded yet
    clock.advance(11)
    # pgw2 is connected here: its push is claim_diameter's, never a stranded one.
    stranded = await outbox.claim_diameter_stranded(["pgw2.host.example"], 10.0, 10)
    assert [d["diameter_peer"] for d in stranded] == ["pgw1.host.example"]
    await outbox.settle(stranded[0], Outcome.RETRY, "no connection")
    clock.advance(60)
    again = await outbox.claim_diameter_stranded(["pgw2.host.example"], 10.0, 10)
    assert [d["diameter_peer"] for d in again] == ["pgw1.host.example"]
    await outbox.settle(again[0], Outcome.RETRY, "no connection")
    doc = await db["outbox"].find_one({"diameter_peer": "pgw1.host.example"})
    assert doc is not None and doc["status"] == "dead" and doc["attempts"] == 2
    left = await db["outbox"].find_one({"diameter_peer": "pgw2.host.example"})
    assert left is not None and left["status"] == "pending" and left["attempts"] == 0
