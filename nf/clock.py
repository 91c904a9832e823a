"""Time, injected. Cores take ``now`` as an argument; shells get it from a ``Clock``, and
background workers wait on it (``until_woken``)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Timer(Protocol):
    """A callback due later on a clock (``Clock.call_later``); ``cancel`` drops it."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time for records and expiry, monotonic time for durations, sleeping in a flow,
    and timers for the waits of background workers."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Timer: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


async def until_woken(*events: asyncio.Event, clock: Clock | None = None,
                      timeout_s: float | None = None) -> None:
    """Wait until one of ``events`` is set (a worker's wake-up, the app stopping, ...) or
    ``timeout_s`` has passed on ``clock``: the one way a background worker with nothing to
    do waits. Returns after one turn of the event loop when one is set already; never
    clears one."""
    if any(e.is_set() for e in events):
        # Still a turn of the loop: a worker that loops on this while stopping must let
        # the tasks it waits for run.
        await asyncio.sleep(0)
        return
    if timeout_s is None and len(events) == 1:
        await events[0].wait()  # the common idle turn: no task, no timer
        return
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(*_: object) -> None:
        if not woken.done():
            woken.set_result(None)

    waits = [asyncio.ensure_future(e.wait()) for e in events]
    for w in waits:
        w.add_done_callback(wake)
    timer = None
    if timeout_s is not None:
        if clock is None:
            raise ValueError("a timeout needs the clock it is measured on")
        timer = clock.call_later(timeout_s, wake)
    try:
        await woken
    finally:
        for w in waits:
            w.cancel()
        if timer is not None:
            timer.cancel()


class _FakeTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to. ``sleep`` yields and advances time at once.

    ``timers=True``: the waits of background workers (``call_later``, ``until_woken``) end
    when ``advance`` moves the clock past them, so a test drives the workers' rounds by
    moving time, without sleeping. By default they last the real time they ask for, so an
    app under test whose clock is never advanced still sees its workers' rounds."""

    def __init__(self, start: datetime | None = None, *, timers: bool = False) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0
        self._drives_timers = timers
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        while self._timers and self._timers[0][0] <= self._mono:
            t = heapq.heappop(self._timers)[2]
            if not t.cancelled:
                t.callback()

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Timer:
        if not self._drives_timers:
            return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)
        t = _FakeTimer(callback)
        heapq.heappush(self._timers, (self._mono + max(0.0, seconds), next(self._seq), t))
        return t


def iso_z(dt: datetime) -> str:
    """An aware UTC datetime as ISO 8601 with ``Z`` (the 3GPP DateTime form)."""
    return utc(dt).isoformat().replace("+00:00", "Z")


def utc(dt: datetime) -> datetime:
    """MongoDB returns naive UTC datetimes unless told otherwise; normalise to aware UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
