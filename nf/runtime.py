"""What every part of the NF is built from, and how parts plug into the app.

``Runtime`` holds the injected dependencies (settings, clock, database, metrics). A
``Part`` is one slice's contribution: HTTP blueprints for the SBI or OAM port, indexes to
create at start, and background workers the app's lifespan runs and stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from quart import Blueprint

from nf.clock import Clock
from nf.config import Settings
from nf.sbi.metrics import Metrics
from nf.store.mongo import Db

Role = Literal["sbi", "oam"]


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Db
    metrics: Metrics = field(default_factory=Metrics)
    # Set when the app stops: workers watch it and finish what they hold.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


# A background worker: runs until ``Runtime.stopping`` is set, then returns after flushing.
Worker = Callable[[], Awaitable[None]]


class Part(Protocol):
    name: str

    def blueprints(self, role: Role) -> list[Blueprint]: ...

    async def ensure_indexes(self) -> None: ...

    def workers(self) -> list[Worker]: ...
