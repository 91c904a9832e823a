"""The registration state machine of one NF profile. Pure: ``now`` (monotonic seconds) is
an argument and every transition returns a new value.

    unregistered --register ok--> registered --heartbeat ok--> registered
         ^   |                        |  heartbeat 404 (the NRF forgot us): register now
         |   +--failure: backoff------+  heartbeat failure: register after a backoff
         +--------------------------------(PUT is idempotent: re-registering is safe)

The heartbeat period is the NRF's ``heartBeatTimer`` (its answer wins over what we asked).
Backoff doubles from ``initial_s`` up to ``max_s`` with each consecutive failure.

A registered profile is also read back (NFProfileRetrieval, ``GET``) every ``check_s``
seconds: an NRF that lost the profile yet answers heartbeats with 2xx (free5GC's does)
answers that read with 404, and the NF registers again at once. ``check_s`` 0: never.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Action(Enum):
    REGISTER = "register"
    HEARTBEAT = "heartbeat"
    CHECK = "check"  # read the profile back from the NRF


@dataclass(frozen=True)
class Backoff:
    initial_s: float
    max_s: float

    def delay(self, failures: int) -> float:
        return min(self.max_s, self.initial_s * 2.0 ** max(0, failures - 1))


@dataclass(frozen=True)
class Registration:
    nf_type: str
    instance_id: str
    registered: bool = False
    heartbeat_s: float = 30.0
    due_at: float = 0.0  # when the next action is due
    failures: int = 0
    last_error: str | None = None
    registrations: int = 0  # successful PUTs so far
    check_s: float = 0.0  # profile read-back period (0: never)
    check_at: float = float("inf")  # when the next read-back is due (while registered)

    @property
    def action(self) -> Action:
        return Action.HEARTBEAT if self.registered else Action.REGISTER

    def action_at(self, now: float) -> Action | None:
        """What is due at ``now``, if anything: a registration or heartbeat first, else a
        read-back of the profile."""
        if self.due_at <= now:
            return self.action
        if self.registered and self.check_at <= now:
            return Action.CHECK
        return None

    @property
    def next_at(self) -> float:
        return min(self.due_at, self.check_at) if self.registered else self.due_at

    @property
    def state(self) -> str:
        if self.registered:
            return "registered"
        return "retrying" if self.failures else "registering"


def registered(r: Registration, now: float, heartbeat_s: float | None) -> Registration:
    hb = heartbeat_s if heartbeat_s and heartbeat_s > 0 else r.heartbeat_s
    return replace(r, registered=True, heartbeat_s=hb, due_at=now + hb, failures=0,
                   last_error=None, registrations=r.registrations + 1,
                   check_at=_check_at(r, now))


def _check_at(r: Registration, now: float) -> float:
    return now + r.check_s if r.check_s > 0 else float("inf")


def checked(r: Registration, now: float) -> Registration:
    """The NRF still holds the profile (or could not say): read it back again later."""
    return replace(r, check_at=_check_at(r, now))


def heartbeat_ok(r: Registration, now: float, heartbeat_s: float | None = None
                 ) -> Registration:
    hb = heartbeat_s if heartbeat_s and heartbeat_s > 0 else r.heartbeat_s
    return replace(r, heartbeat_s=hb, due_at=now + hb, failures=0, last_error=None)


def forgotten(r: Registration, now: float) -> Registration:
    """The NRF answered 404 to a heartbeat or a read-back: it lost our profile. Register
    again now."""
    return replace(r, registered=False, due_at=now, last_error="the NRF lost the profile")


def failed(r: Registration, now: float, backoff: Backoff, error: str) -> Registration:
    """A request failed (NRF down, timeout, 5xx, refusal): register again after a backoff."""
    n = r.failures + 1
    return replace(r, registered=False, failures=n, due_at=now + backoff.delay(n),
                   last_error=error)


def next_due(regs: list[Registration]) -> float:
    return min(r.next_at for r in regs)
