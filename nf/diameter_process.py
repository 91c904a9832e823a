"""The Diameter process of ``nf serve`` (role ``diameter``): the NF's parts without an HTTP
server, the Diameter listener among their workers.

Why a process of its own rather than inside the SBI or OAM one: the connections of a
host network's PGWs must live in exactly one place (the pushes towards them — RAR, SNR —
are sent by the process holding them), which rules out the SBI's several worker processes;
and Diameter traffic must not starve the OAM probes and the care API in the one OAM
process. Like an SBI worker, it leaves index checks to the OAM process and runs the same
background workers (they coordinate through the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from nf import logs
from nf.config import Settings
from nf.proc import loop_factory, tune_gc

log = logging.getLogger("nf.diameter")


async def _run(settings: Settings) -> bool:
    from nf.wiring import create_app

    app = create_app(settings, role="diameter", build_indexes=False)
    life = app.extensions["nf.lifecycle"]
    tune_gc()  # as the SBI and OAM workers do
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await life.start()
    # The workers (the Diameter listener among them) run in the lifespan's task group,
    # as under a server; leaving it stops them.
    async with contextlib.asynccontextmanager(life.serve)():
        await stop.wait()
    flushed: bool = await life.stop()
    return flushed


def main() -> None:
    settings = Settings.load()
    logs.setup(settings.log_level)
    # The event loop the SBI workers run on (uvloop when installed): its socket transports
    # cost the database driver's many small writes less than asyncio's own.
    with asyncio.Runner(loop_factory=loop_factory(settings.server.granian_loop)) as runner:
        ok = runner.run(_run(settings))
    if not ok:
        logs.log(log, logging.ERROR, "the diameter process did not stop cleanly")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
