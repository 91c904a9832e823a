"""Quiet hours: when a non-urgent notice due at ``t`` may go out, in the brand's local
time. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _hm(s: str) -> time:
    h, m = s.split(":")
    return time(int(h), int(m))


def release_at(t: datetime, tz: str, start: str | None, end: str | None) -> datetime:
    """``t`` itself outside [start, end) local time (the window may span midnight), else
    the next local ``end`` (as UTC)."""
    if start is None or end is None:
        return t
    zone = ZoneInfo(tz)
    local = t.astimezone(zone)
    s, e = _hm(start), _hm(end)
    now_t = local.time()
    if s == e:
        return t
    inside = (s <= now_t < e) if s < e else (now_t >= s or now_t < e)
    if not inside:
        return t
    day = local.date()
    if now_t >= e:  # in a window that spans midnight, before midnight
        day = day + timedelta(days=1)
    out = datetime.combine(day, e, tzinfo=zone)
    return out.astimezone(UTC)
