"""The registration state machine of one NF profile. Pure: ``now`` (monotonic seconds) is
an argument and every transition returns a new value.

    unregistered --register ok--> registered --heartbeat ok--> registered
         ^   |                        |  heartbeat 404 (the NRF forgot us): register now
         |   +--failure: backoff------+  heartbeat failure: register after a backoff
         +--------------------------------(PUT is idempotent: re-registering is safe)

The heartbeat period is the NRF's ``heartBeatTimer`` (its answer wins over what we asked).
Backoff doubles from ``initial_s`` up to ``max_s`` with each consecutive failure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Action(Enum):
    REGISTER = "register"
    HEARTBEAT = "heartbeat"


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

    @property
    def action(self) -> Action:
        return Action.HEARTBEAT if self.registered else Action.REGISTER

    @property
    def state(self) -> str:
        if self.registered:
            return "registered"
        return "retrying" if self.failures else "registering"


def registered(r: Registration, now: float, heartbeat_s: float | None) -> Registration:
    hb = heartbeat_s if heartbeat_s and heartbeat_s > 0 else r.heartbeat_s
    return replace(r, registered=True, heartbeat_s=hb, due_at=now + hb, failures=0,
                   last_error=None, registrations=r.registrations + 1)


def heartbeat_ok(r: Registration, now: float, heartbeat_s: float | None = None
                 ) -> Registration:
    hb = heartbeat_s if heartbeat_s and heartbeat_s > 0 else r.heartbeat_s
    return replace(r, heartbeat_s=hb, due_at=now + hb, failures=0, last_error=None)


def forgotten(r: Registration, now: float) -> Registration:
    """The NRF answered 404 to a heartbeat: it lost our profile. Register again now."""
    return replace(r, registered=False, due_at=now, last_error="the NRF lost the profile")


def failed(r: Registration, now: float, backoff: Backoff, error: str) -> Registration:
    """A request failed (NRF down, timeout, 5xx, refusal): register again after a backoff."""
    n = r.failures + 1
    return replace(r, registered=False, failures=n, due_at=now + backoff.delay(n),
                   last_error=error)


def next_due(regs: list[Registration]) -> float:
    return min(r.due_at for r in regs)
