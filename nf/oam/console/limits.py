"""Sign-in attempt limits (pure: numbers and a clock reading in, decisions out).

Two limits, on two different things:

- **A presented key is locked** (``KeyLockout``). Failed sign-ins are counted per key id (the
  digest's short name of whatever key was presented) in a window that starts at its first
  failure; ``max_failures`` in the window lock that key id for ``lockout_s``. A script
  retrying a stale key, or many addresses trying the same key, stop there; nobody else does.
- **An address is slowed, never locked** (``AddressDelay``). Behind a NAT or a proxy a whole
  call centre has one address: locking it would lock everyone out because of one person's
  typos (or one attacker's guesses). Instead each failure from an address makes its next
  sign-ins wait longer before their key is even looked at: ``base_s`` after the first
  failure, doubling with each further one, never more than ``max_s``. The count is
  forgotten ``window_s`` after the address's last failure. A guesser is slowed to one try
  per ``max_s`` per waiting request; a colleague with the right key gets in after that wait.

A success resets neither count: a client holding one valid key cannot interleave it to keep
guessing others. Memory is bounded: at most ``max_tracked`` key ids and as many addresses,
least recently seen dropped first (a client that keeps trying stays recent).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class _Recent(Generic[T]):
    """Entries by key, at most ``max_tracked`` (the least recently seen dropped first); an
    entry whose time is over (``_over``) is forgotten when it is next read."""

    def __init__(self, max_tracked: int) -> None:
        self.max_tracked = max_tracked
        self._entries: OrderedDict[str, T] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _over(self, entry: T, now: float) -> bool:
        raise NotImplementedError

    def _live(self, key: str, now: float) -> T | None:
        e = self._entries.get(key)
        if e is None:
            return None
        if self._over(e, now):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return e

    def _keep(self, key: str, entry: T) -> T:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_tracked:
            self._entries.popitem(last=False)
        return entry


@dataclass
class _Count:
    start: float
    failures: int = 0
    locked_until: float = 0.0


class KeyLockout(_Recent[_Count]):
    def __init__(self, max_failures: int, window_s: float, lockout_s: float,
                 max_tracked: int) -> None:
        if max_failures < 1 or window_s <= 0 or lockout_s <= 0 or max_tracked < 1:
            raise ValueError("sign-in limits must be positive")
        super().__init__(max_tracked)
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s

    def _over(self, entry: _Count, now: float) -> bool:
        return now >= entry.locked_until and now - entry.start >= self.window_s

    def retry_after(self, key_id: str, now: float) -> int | None:
        """Whole seconds until ``key_id`` is no longer locked; None if it is not."""
        c = self._live(key_id, now)
        if c is None or c.locked_until <= now:
            return None
        return max(1, math.ceil(c.locked_until - now))

    def failed(self, key_id: str, now: float) -> bool:
        """Counts a failed sign-in with ``key_id``; True if this failure locked it."""
        c = self._live(key_id, now)
        if c is None or now - c.start >= self.window_s:
            c = _Count(start=now, locked_until=c.locked_until if c else 0.0)
        c = self._keep(key_id, c)
        c.failures += 1
        locked = c.failures >= self.max_failures and c.locked_until <= now
        if locked:
            c.locked_until = now + self.lockout_s
        return locked


@dataclass
class _Failures:
    last: float
    count: int = 0


class AddressDelay(_Recent[_Failures]):
    def __init__(self, base_s: float, max_s: float, window_s: float,
                 max_tracked: int) -> None:
        if base_s <= 0 or max_s < base_s or window_s <= 0 or max_tracked < 1:
            raise ValueError("sign-in delays must be positive, the maximum at least the base")
        super().__init__(max_tracked)
        self.base_s = base_s
        self.max_s = max_s
        self.window_s = window_s

    def _over(self, entry: _Failures, now: float) -> bool:
        return now - entry.last >= self.window_s

    def delay_s(self, address: str, now: float) -> float:
        """How long a sign-in from ``address`` waits before its key is checked."""
        f = self._live(address, now)
        if f is None or f.count == 0:
            return 0.0
        # 2**n overflows nothing here: n is capped where the doubling passes max_s.
        n = min(f.count - 1, 64)
        return min(self.max_s, self.base_s * 2.0 ** n)

    def failed(self, address: str, now: float) -> None:
        f = self._keep(address, self._live(address, now) or _Failures(last=now))
        f.last = now
        f.count += 1
