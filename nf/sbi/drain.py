"""The graceful stop of a Granian worker process.

On SIGTERM Granian closes the worker's listener and sends GOAWAY on its HTTP/2
connections, but it runs the ASGI lifespan shutdown only once every connection has been
closed, by the peer. An SMF keeps its connection for hours, so that never happens: Granian
kills the worker after its kill timeout, the app never flushes its background workers and
never logs ``stopped``.

So in a Granian worker the app takes SIGTERM itself (``install``). It starts Granian's own
stop (through SIGINT, which Granian handles like SIGTERM: listener closed, GOAWAY), waits
for the requests in flight, stops the app (workers flushed, database closed: the same
``_Lifecycle.stop`` the lifespan shutdown calls, run once), gives the server a moment to
write the last responses, and ends the process. Connections still open then are idle and
have had their GOAWAY; the exit closes them. All of it within ``shutdown_grace_s``.

The exit status says how it went: 0 when nothing was in flight at the deadline and the
workers finished, 1 otherwise; then the worker also tells its server process
(``UNCLEAN_STOP_SIGNAL``), which Granian would not, so that ``nf serve`` exits 1.

Only for the processes ``nf serve`` starts under Granian; an app built by a test or run by
Hypercorn (which closes idle connections itself) never installs it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Protocol

from quart import Quart

from nf import logs
from nf.clock import Clock
from nf.proc import UNCLEAN_STOP_SIGNAL
from nf.runtime import Runtime
from nf.sbi.guard import Guard

log = logging.getLogger("nf.drain")

# After the app has stopped: time for the server to write the last responses out.
LINGER_S = 0.2
_POLL_S = 0.02
# The part of ``shutdown_grace_s`` that requests still in flight cannot take from the flush.
FLUSH_SHARE = 0.25


class _Counts(Protocol):
    @property
    def inflight(self) -> int: ...


class _Stops(Protocol):
    async def stop(self, timeout_s: float | None = None) -> bool: ...


async def drain(guard: _Counts, life: _Stops, clock: Clock, grace_s: float, role: str) -> int:
    """Wait for the requests in flight, then stop the app within what is left of
    ``grace_s``; the process's exit status. The requests may take all but
    ``FLUSH_SHARE`` of the grace: that much is kept for flushing the background workers
    (the effects of the requests answered)."""
    deadline = clock.monotonic() + grace_s
    requests_deadline = deadline - grace_s * FLUSH_SHARE
    while guard.inflight and clock.monotonic() < requests_deadline:
        await clock.sleep(_POLL_S)
    cut = guard.inflight
    flushed = await life.stop(max(0.0, deadline - clock.monotonic()))
    await clock.sleep(LINGER_S)
    ok = cut == 0 and flushed
    logs.log(log, logging.INFO if ok else logging.ERROR, "worker exits", role=role,
             pid=os.getpid(), requests_cut=cut, workers_flushed=flushed)
    return 0 if ok else 1


def install(app: Quart, role: str) -> None:
    """Make the app's process stop as above on SIGTERM, once its lifespan has started
    (the server's own signal handlers are in place by then)."""
    rt: Runtime = app.extensions["nf.runtime"]
    guard: Guard = app.extensions["nf.guard"]
    life: _Stops = app.extensions["nf.lifecycle"]
    grace_s = rt.settings.server.shutdown_grace_s
    tasks: set[asyncio.Task[None]] = set()

    parent = os.getppid()  # Granian's server process, which reports to ``nf serve``

    async def run() -> None:
        code = await drain(guard, life, rt.clock, grace_s, role)
        if code and os.getppid() == parent:
            os.kill(parent, UNCLEAN_STOP_SIGNAL)
        # Granian would keep the process for its idle connections: end it here.
        os._exit(code)

    def on_sigterm() -> None:
        if tasks:  # a repeated SIGTERM: the stop is under way
            return
        logs.log(log, logging.INFO, "worker stopping", role=role, pid=os.getpid(),
                 inflight=guard.inflight)
        os.kill(os.getpid(), signal.SIGINT)  # Granian's own stop: listener closed, GOAWAY
        tasks.add(asyncio.get_running_loop().create_task(run()))

    @app.before_serving
    async def _take_sigterm() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
