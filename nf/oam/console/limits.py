"""Sign-in attempt limits (pure: numbers and a clock reading in, decisions out).

Failed sign-ins are counted per subject (a client address, the key id of the key that was
presented) in a window that starts at the subject's first failure. A subject with
``max_failures`` failures in its window is locked out for ``lockout_s`` from the failure
that locked it; while any subject of a sign-in is locked, the sign-in is refused before the
key is even looked at (so a locked-out client learns nothing, not even from a good key).
A success does not reset a count: a client holding one valid key cannot interleave it to
keep guessing others. Memory is bounded: at most ``max_tracked`` subjects, least recently
seen dropped first (a client that keeps trying stays recent, so it stays locked).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class _Count:
    start: float
    failures: int = 0
    locked_until: float = 0.0


class SignInLimiter:
    def __init__(self, max_failures: int, window_s: float, lockout_s: float,
                 max_tracked: int) -> None:
        if max_failures < 1 or window_s <= 0 or lockout_s <= 0 or max_tracked < 1:
            raise ValueError("sign-in limits must be positive")
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_tracked = max_tracked
        self._counts: OrderedDict[str, _Count] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    def _live(self, subject: str, now: float) -> _Count | None:
        c = self._counts.get(subject)
        if c is None:
            return None
        if now >= c.locked_until and now - c.start >= self.window_s:
            del self._counts[subject]  # its window and any lockout are over
            return None
        self._counts.move_to_end(subject)
        return c

    def retry_after(self, subjects: Sequence[str], now: float) -> int | None:
        """Whole seconds until the last of ``subjects`` locked out is free; None if none."""
        waits = [c.locked_until - now for s in subjects
                 if (c := self._live(s, now)) is not None and c.locked_until > now]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, subjects: Sequence[str], now: float) -> list[str]:
        """Count a failed sign-in against each subject; returns those it locked out."""
        locked: list[str] = []
        for s in subjects:
            c = self._live(s, now)
            if c is None or now - c.start >= self.window_s:
                c = _Count(start=now, locked_until=c.locked_until if c else 0.0)
                self._counts[s] = c
                self._counts.move_to_end(s)
            c.failures += 1
            if c.failures >= self.max_failures and c.locked_until <= now:
                c.locked_until = now + self.lockout_s
                locked.append(s)
        while len(self._counts) > self.max_tracked:
            self._counts.popitem(last=False)
        return locked
