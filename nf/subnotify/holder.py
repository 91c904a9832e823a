"""Who holds a notice being sent, and whether that holder is a dead predecessor.

A sender's claim on a notice names its process: the NF instance (``instance_id``), the
host, the process id and a token drawn once per process start. At start, a sender takes
back at once the claims of its instance's processes on the same host that are gone (the
pid no longer runs, or runs again as a new process: another token), instead of waiting
for their lease to run out. Claims it cannot judge (another instance, another host, a
live pid) are left to their lease, so two NF instances on one database never take each
other's notices, even if they were given the same ``instance_id``. Pure but for
``this_process`` and ``pid_alive``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Drawn once per process start (a forked child shares it, but not its pid).
_TOKEN = uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Holder:
    instance: str
    host: str
    pid: int
    token: str

    @property
    def owner(self) -> str:
        return f"{self.instance}:{self.host}:{self.pid}:{self.token}"

    def doc(self) -> dict[str, Any]:
        return {"instance": self.instance, "host": self.host, "pid": self.pid,
                "token": self.token}

    @classmethod
    def of(cls, d: object) -> Holder | None:
        """The holder stored on a notice; None for a claim without one (or malformed)."""
        if not isinstance(d, dict):
            return None
        try:
            return cls(str(d["instance"]), str(d["host"]), int(d["pid"]), str(d["token"]))
        except (KeyError, TypeError, ValueError):
            return None


def this_process(instance_id: str) -> Holder:
    return Holder(instance_id, socket.gethostname(), os.getpid(), _TOKEN)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def dead_predecessor(held: Holder, me: Holder, alive: Callable[[int], bool]) -> bool:
    """Whether ``held`` is a process of ``me``'s instance, on ``me``'s host, that is gone."""
    if held.instance != me.instance or held.host != me.host or held.token == me.token:
        return False
    if held.pid == me.pid:
        return True  # this pid in an earlier life
    return held.pid > 0 and not alive(held.pid)
