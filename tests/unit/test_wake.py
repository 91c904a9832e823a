"""The wake of the Diameter process's pusher by another process (``nf.notify.wake``): a
real Unix datagram socket; the outbox sends a wake only for a Diameter push."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from nf.clock import FakeClock
from nf.config import Settings
from nf.metrics import Metrics
from nf.notify.outbox import MongoOutbox
from nf.notify.port import Notification
from nf.notify.wake import DRAIN_MAX, MESSAGE, WakeListener, Waker
from nf.runtime import Runtime
from nf.store.mongo import Db


def wakes(m: Metrics, outcome: str) -> float:
    return m.registry.get_sample_value("nf_diameter_push_wakes_total",
                                       {"outcome": outcome}) or 0.0


async def woken(event: asyncio.Event, timeout_s: float = 2.0) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


def raw_send(path: Path, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(data, str(path))


async def test_a_wake_from_another_socket_sets_the_event(tmp_path: Path) -> None:
    path, event, m = tmp_path / "w.sock", asyncio.Event(), Metrics()
    waker = Waker(path, m)
    try:
        with WakeListener(path, event, m) as listener:
            assert listener.listening and path.is_socket()
            assert waker.wake()
            assert await woken(event)
            assert wakes(m, "sent") == 1 and wakes(m, "received") == 1
        assert not path.exists()  # the listener removes its socket
    finally:
        waker.close()


async def test_junk_is_ignored_and_read_bounded(tmp_path: Path) -> None:
    """Datagrams that are not the wake (other bytes, the wake with more after it, a large
    one) set nothing and are counted; a wake after them still works."""
    path, event, m = tmp_path / "w.sock", asyncio.Event(), Metrics()
    with WakeListener(path, event, m):
        for junk in (b"", b"hello", MESSAGE + b"x", MESSAGE[:-1], b"\xff" * 60_000):
            raw_send(path, junk)
        for _ in range(20):  # let the loop read them
            await asyncio.sleep(0.01)
        assert not event.is_set()
        assert wakes(m, "ignored") == 5 and wakes(m, "received") == 0
        raw_send(path, MESSAGE)
        assert await woken(event)
        assert wakes(m, "received") == 1


async def test_the_enqueuer_never_blocks_and_drops_what_cannot_be_delivered(
        tmp_path: Path) -> None:
    """No listener yet: the wake is dropped at once. A listener that reads nothing (a
    full queue): thousands of wakes return at once, most dropped; the listener then
    reads at most ``DRAIN_MAX`` in one turn and sets the event once."""
    path, m = tmp_path / "w.sock", Metrics()
    waker = Waker(path, m)
    try:
        assert waker.wake() is False  # nobody listens
        assert wakes(m, "dropped") == 1
        event = asyncio.Event()
        listener = WakeListener(path, event, m)
        with listener:
            t0 = time.monotonic()
            # Sent from the loop's own thread: the listener cannot read meanwhile.
            sent = [waker.wake() for _ in range(5000)]
            assert time.monotonic() - t0 < 2.0
            assert any(sent) and not all(sent)  # the kernel's queue is bounded
            assert wakes(m, "dropped") == 1 + sent.count(False)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert event.is_set()
            assert 0 < wakes(m, "received") <= 2 * DRAIN_MAX  # at most a turn's worth or two
            for _ in range(50):
                if wakes(m, "received") == sent.count(True):
                    break
                await asyncio.sleep(0.01)
            assert wakes(m, "received") == sent.count(True)
    finally:
        waker.close()
    assert waker.wake() is False  # closed: dropped, no error


async def test_a_stale_socket_is_replaced_and_another_file_left_alone(
        tmp_path: Path) -> None:
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(stale))  # left by an earlier run
    event = asyncio.Event()
    with WakeListener(stale, event) as listener:
        assert listener.listening
        raw_send(stale, MESSAGE)
        assert await woken(event)
    not_ours = tmp_path / "data"
    not_ours.write_text("keep")
    with WakeListener(not_ours, asyncio.Event()) as listener:
        assert not listener.listening  # not bound: the poll remains
    assert not_ours.read_text() == "keep"
    with WakeListener(None, asyncio.Event()) as listener:
        assert not listener.listening


@pytest.mark.parametrize(("uri", "wakes_sent"), [
    ("diameter://pgw1.host.example/pgw1%3B1%3B7/update", 1),
    ("http://127.0.0.1:9/smf/update", 0),
])
async def test_the_outbox_wakes_only_for_a_diameter_push(
        settings: Settings, db: Db, clock: FakeClock, tmp_path: Path, uri: str,
        wakes_sent: int) -> None:
    """The enqueue itself is the only database operation; the wake is a datagram."""
    rt = Runtime(settings=settings, clock=clock, db=db)
    path = tmp_path / "w.sock"
    waker = Waker(path, rt.metrics)
    outbox = MongoOutbox(rt, waker=waker)
    other_process = asyncio.Event()
    try:
        with WakeListener(path, other_process):
            await outbox.enqueue([Notification(kind="test.kind", uri=uri, body={"n": 1})])
            assert await woken(other_process, 0.5) is bool(wakes_sent)
        assert wakes(rt.metrics, "sent") == wakes_sent
    finally:
        waker.close()
