"""What every part of the NF is built from, and how parts plug into the app.

``Runtime`` holds the injected dependencies (settings, clock, database, metrics). A
``Part`` is one slice's contribution: HTTP blueprints for the SBI or OAM port, indexes to
create at start, and background workers the app's lifespan runs and stops. A part with
start work every process needs also has a ``start`` method (``Starts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from quart import Blueprint

from nf.clock import Clock
from nf.config import Settings
from nf.sbi.metrics import Metrics
from nf.security.apikeys import KeyRing
from nf.store.mongo import Db

if TYPE_CHECKING:
    from nf.ledger.port import CounterChange, CounterListener

Role = Literal["sbi", "oam", "diameter"]


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Db
    metrics: Metrics = field(default_factory=Metrics)
    # Set when the app stops: workers watch it and finish what they hold.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Told when subscribers' policy counters or speed change (the PCF, spending-limit
    # subscriptions). Filled by ``nf.wiring``.
    counter_listeners: list[CounterListener] = field(default_factory=list)
    # Which port this app serves (a part that must run once per NF instance runs its
    # worker in the ``oam`` app only: it has exactly one process).
    role: Role | None = None
    # Informational entries of ``/readyz`` (name -> JSON-able state); they never make the
    # NF unready.
    reports: dict[str, Callable[[], object]] = field(default_factory=dict)

    @functools.cached_property
    def api_keys(self) -> KeyRing:
        """The care API's keys (``settings.api_keys``), resolved once for every blueprint
        that checks them (key files and environment variables are read here)."""
        return KeyRing.from_settings(self.settings.api_keys)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` between rounds of a background worker, or less if the app is
        stopping (check ``stopping`` after)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def wake_or_stop(self, wake: asyncio.Event) -> None:
        """Wait until ``wake`` is set or the app is stopping (a worker with nothing to do).
        Clears ``wake`` first, so a set after this call began is never missed."""
        wake.clear()
        waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self.stopping.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def publish_counter_changes(self, changes: Sequence[CounterChange]) -> None:
        """Tell every listener, all at once (the PCF's throttle does not wait for the
        notices or the EDRs of the same changes); raises the first listener's error once
        all have finished (the changes stay pending and are delivered again)."""
        if not changes:
            return
        results = await asyncio.gather(
            *(listener.counters_changed(changes) for listener in self.counter_listeners),
            return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r


# A background worker: runs until ``Runtime.stopping`` is set, then returns after flushing.
Worker = Callable[[], Awaitable[None]]


class Part(Protocol):
    name: str

    def blueprints(self, role: Role) -> list[Blueprint]: ...

    # Index checks: run at start by the one process of the NF that builds indexes (under
    # ``nf serve`` the OAM process), before the database warm-up.
    async def ensure_indexes(self) -> None: ...

    def workers(self) -> list[Worker]: ...


@runtime_checkable
class Starts(Protocol):
    """Optional for a part: start work every process needs (e.g. loading keys), run after
    the index checks. Parts with nothing to do there leave it out."""

    async def start(self) -> None: ...
