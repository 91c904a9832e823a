"""Time, injected. Cores take ``now`` as an argument; shells get it from a ``Clock``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time for records and expiry, monotonic time for durations, and sleeping."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to. ``sleep`` yields and advances time at once."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def iso_z(dt: datetime) -> str:
    """An aware UTC datetime as ISO 8601 with ``Z`` (the 3GPP DateTime form)."""
    return utc(dt).isoformat().replace("+00:00", "Z")


def utc(dt: datetime) -> datetime:
    """MongoDB returns naive UTC datetimes unless told otherwise; normalise to aware UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
