"""Pure layout of the console's bars and charts (no I/O): numbers in, shapes out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from nf.oam.views import human


@dataclass(frozen=True)
class Bar:
    """A bucket as three stacked segments, in percent of its quota."""

    used_pct: float
    reserved_pct: float
    remaining_pct: float
    label: str


def bucket_bar(quota: int, used: int, reserved: int) -> Bar:
    q = max(quota, 0)
    u = min(max(used, 0), q)
    r = min(max(reserved, 0), q - u)
    rest = max(q - u - r, 0)

    def pct(n: int) -> float:
        return round(100.0 * n / q, 2) if q else 0.0

    return Bar(pct(u), pct(r), pct(rest),
               f"{human(used)} used, {human(reserved)} reserved, {human(rest)} left "
               f"of {human(quota)}")


@dataclass(frozen=True)
class DayBar:
    day: str
    full: int
    throttled: int
    x: float
    full_y: float
    full_h: float
    thr_y: float
    thr_h: float


@dataclass(frozen=True)
class UsageChart:
    days: tuple[DayBar, ...]
    width: int
    height: int
    bar_w: float
    max_bytes: int
    total_full: int
    total_throttled: int

    @property
    def max_label(self) -> str:
        return human(self.max_bytes)


def last_days(today: date, n: int) -> list[str]:
    return [(today - timedelta(days=n - 1 - i)).isoformat() for i in range(n)]


def usage_chart(now: datetime, per_day: dict[str, tuple[int, int]], n: int = 30,
                width: int = 600, height: int = 160) -> UsageChart:
    """``per_day`` maps "YYYY-MM-DD" to (full-speed bytes, throttled bytes)."""
    days = last_days(now.date(), n)
    top = max((sum(per_day.get(d, (0, 0))) for d in days), default=0)
    scale = max(top, 1)
    slot = width / n
    bar_w = max(slot - 2, 1)
    out: list[DayBar] = []
    for i, d in enumerate(days):
        full, thr = per_day.get(d, (0, 0))
        fh = height * full / scale
        th = height * thr / scale
        out.append(DayBar(d, full, thr, round(i * slot + 1, 2), round(height - fh, 2),
                          round(fh, 2), round(height - fh - th, 2), round(th, 2)))
    return UsageChart(tuple(out), width, height, round(bar_w, 2), top,
                      sum(b.full for b in out), sum(b.throttled for b in out))
