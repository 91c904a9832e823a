"""The one wait of background workers (``nf.clock.until_woken``, ``Runtime.pause`` and
``Runtime.wake_or_stop``): until woken, until the app stops, or until a time has passed on
the injected clock, so a test moves the clock instead of sleeping."""

from __future__ import annotations

import asyncio

from nf.clock import FakeClock, until_woken
from nf.config import Settings
from nf.runtime import Runtime


def _rt(clock: FakeClock) -> Runtime:
    return Runtime(settings=Settings(), clock=clock, db=None)  # type: ignore[arg-type]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_pause_between_rounds_lasts_its_time_on_the_clock() -> None:
    clock = FakeClock(timers=True)
    rt = _rt(clock)
    pause = asyncio.create_task(rt.pause(30.0))
    await _settle()
    clock.advance(29.0)
    await _settle()
    assert not pause.done()
    clock.advance(1.0)
    await asyncio.wait_for(pause, 1.0)


async def test_a_pause_ends_when_the_app_stops() -> None:
    rt = _rt(FakeClock(timers=True))
    pause = asyncio.create_task(rt.pause(3600.0))
    await _settle()
    assert not pause.done()
    rt.stopping.set()
    await asyncio.wait_for(pause, 1.0)


async def test_an_idle_worker_wakes_for_work_or_the_stop_and_misses_no_wake() -> None:
    rt = _rt(FakeClock(timers=True))
    wake = asyncio.Event()
    idle = asyncio.create_task(rt.wake_or_stop(wake))
    await _settle()
    assert not idle.done()
    wake.set()
    await asyncio.wait_for(idle, 1.0)
    idle = asyncio.create_task(rt.wake_or_stop(wake))  # the wake before is spent
    await _settle()
    assert not idle.done()
    rt.stopping.set()
    await asyncio.wait_for(idle, 1.0)


async def test_a_timer_that_is_cancelled_never_fires() -> None:
    clock = FakeClock(timers=True)
    woken = asyncio.Event()
    wait = asyncio.create_task(until_woken(woken, clock=clock, timeout_s=5.0))
    await _settle()
    woken.set()
    await asyncio.wait_for(wait, 1.0)
    fired: list[int] = []
    clock.call_later(1.0, lambda: fired.append(1)).cancel()
    clock.advance(10.0)
    assert fired == []
