"""The Granian worker's own stop (``nf.sbi.drain``): requests in flight first, then the app,
all within the grace; the exit status says whether anything was cut."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from nf.clock import FakeClock
from nf.sbi.drain import FLUSH_SHARE, LINGER_S, drain


@dataclass
class Requests:
    """Requests in flight until ``done_at`` (monotonic time; None: never done)."""

    clock: FakeClock
    n: int
    done_at: float | None

    @property
    def inflight(self) -> int:
        if self.done_at is not None and self.clock.monotonic() >= self.done_at:
            return 0
        return self.n


@dataclass
class App:
    clock: FakeClock
    flushes: bool = True
    stops: list[tuple[float, float | None]] = field(default_factory=list)

    async def stop(self, timeout_s: float | None = None) -> bool:
        self.stops.append((self.clock.monotonic(), timeout_s))
        return self.flushes


def test_waits_for_the_requests_then_stops_the_app_with_what_is_left_of_the_grace() -> None:
    clock = FakeClock()
    t0 = clock.monotonic()
    app = App(clock)
    code = asyncio.run(drain(Requests(clock, 3, t0 + 1.5), app, clock, 5.0, "sbi"))
    assert code == 0
    [(at, budget)] = app.stops
    assert t0 + 1.5 <= at < t0 + 1.6  # not before the last request ended
    assert budget is not None and 3.4 < budget <= 3.5
    assert clock.monotonic() - t0 < 5.0 + LINGER_S + 0.1


def test_requests_still_in_flight_at_the_deadline_are_cut_and_the_status_says_so() -> None:
    clock = FakeClock()
    t0 = clock.monotonic()
    app = App(clock)
    code = asyncio.run(drain(Requests(clock, 2, None), app, clock, 2.0, "sbi"))
    assert code == 1
    # The requests had the grace but its flush share, which the app's stop still gets.
    [(at, budget)] = app.stops
    assert t0 + 2.0 * (1 - FLUSH_SHARE) <= at < t0 + 2.0 * (1 - FLUSH_SHARE) + 0.1
    assert budget is not None and 2.0 * FLUSH_SHARE - 0.1 < budget <= 2.0 * FLUSH_SHARE


def test_workers_not_flushed_in_time_make_the_status_1() -> None:
    clock = FakeClock()
    code = asyncio.run(drain(Requests(clock, 0, None), App(clock, flushes=False), clock, 2.0,
                             "oam"))
    assert code == 1
