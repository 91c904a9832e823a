"""Crash-test plumbing: ``nf serve`` and SecantusDB as real processes on fixed ports that
are SIGKILLed and started again on the same ports and data; SMFs that retransmit.

Everything the SMFs do goes over HTTP/2 to the NF, and everything checked afterwards is
read back through the provisioning API: the tests hold whatever the NF keeps inside.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from nf.sbi.runner import PortInUse, claim_check
from nf.store import embedded
from tests.e2e.nfproc import kill_tree, not_ready, serve_env, spawn_serve
from tests.smf_sim import Exchange, SmfSim, Usage

CONFIG = Path(__file__).resolve().parent / "nf-crash.yaml"
ADMIN = {"x-api-key": "crash-admin-key"}
MIB = 1024 * 1024
GRANT = MIB  # default_grant_bytes in nf-crash.yaml
RETRY_S = 0.15


# -- processes -------------------------------------------------------------------------------


@dataclass
class Nf:
    """``nf serve`` on fixed ports, startable again after a kill."""

    db_uri: str
    database: str
    log_dir: Path
    sbi_port: int = field(default_factory=embedded.free_port)
    oam_port: int = field(default_factory=embedded.free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def sbi(self) -> str:
        return f"http://127.0.0.1:{self.sbi_port}"

    @property
    def oam(self) -> str:
        return f"http://127.0.0.1:{self.oam_port}"

    def spawn(self, timeout_s: float = 30) -> None:
        """Start ``nf serve`` (not waiting for it to be ready)."""
        # Ports of a killed NF are free at once; check anyway (never share them).
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                claim_check("SBI", "127.0.0.1", self.sbi_port)
                claim_check("OAM", "127.0.0.1", self.oam_port)
                break
            except PortInUse:
                assert time.monotonic() < deadline, "the killed NF's ports stay taken"
                time.sleep(0.05)
        env = serve_env(self.db_uri, self.database, self.sbi_port, self.oam_port, CONFIG)
        env["NF_LOG_LEVEL"] = "WARNING"
        self.starts += 1
        self.proc = spawn_serve(env, self.log, new_session=True)

    @property
    def log(self) -> Path:
        return self.log_dir / f"nf-{self.starts}.log"

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"nf exited {self.proc.returncode}:\n{self.log.read_text()}")
        return not_ready(self.oam, self.sbi) is None

    def start(self, timeout_s: float = 60) -> None:
        self.spawn()
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            assert time.monotonic() < deadline, f"nf not ready:\n{self.log.read_text()}"
            time.sleep(0.1)

    async def restart(self, timeout_s: float = 60) -> None:
        """Start again after a kill; the event loop (the SMFs) keeps running meanwhile."""
        self.spawn()
        deadline = time.monotonic() + timeout_s
        while not await asyncio.to_thread(self.ready):
            assert time.monotonic() < deadline, f"nf not ready:\n{self.log.read_text()}"
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        kill_tree(self.proc.pid)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                kill_tree(self.proc.pid)
                self.proc.wait()
        if self.proc is not None:
            kill_tree(self.proc.pid)  # nothing may be left behind


@dataclass
class Db:
    """SecantusDB on a fixed port and data directory, started durably."""

    data: Path
    port: int = field(default_factory=embedded.free_port)
    server: embedded.EmbeddedDb | None = None

    def start(self) -> None:
        # From the main thread only: the server dies with the thread that started it.
        self.server = embedded.start(self.data, port=self.port, durable=True,
                                     prefer=os.environ.get("NF_TEST_DB", "auto"),
                                     log=self.data.parent / "db.log")

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def kill(self) -> None:
        assert self.server is not None
        self.server.process.kill()
        self.server.process.wait(10)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


# -- SMFs that retransmit ---------------------------------------------------------------------


@dataclass
class Ledger:
    """What the SMFs reported and had acknowledged, per subscriber (each sequence once)."""

    reported: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    retransmissions: int = 0
    # Requests sent and not yet answered, now and when the crash struck.
    in_flight: int = 0
    in_flight_at_crash: int = 0

    def add(self, supi: str, volume: int) -> None:
        self.reported[supi] = self.reported.get(supi, 0) + volume


async def reliably(sim: SmfSim, first: Callable[[], Awaitable[Exchange]], book: Ledger,
                   deadline: float) -> Exchange:
    """Send, and until answered (no transport error, no 5xx) retransmit the very same
    request with the same sequence number, as an SMF does."""
    book.in_flight += 1
    try:
        ex: Exchange | None = await first()
    except httpx.TransportError:
        ex = None
    finally:
        book.in_flight -= 1
    pause = RETRY_S
    while ex is None or ex.status >= 500:
        assert time.monotonic() < deadline, f"{sim.supi}: no answer in time ({ex})"
        await asyncio.sleep(pause)
        pause = min(1.0, pause * 1.5)
        book.retransmissions += 1
        try:
            ex = await sim.retransmit()
        except httpx.TransportError:
            ex = None
    book.answered += 1
    return ex


async def drive_to_cap(sim: SmfSim, book: Ledger, deadline: float) -> None:
    """One PDU session: create, then report each grant as fully used and ask for more
    until nothing more is granted, then release."""
    ex = await reliably(sim, lambda: sim.create(requested=GRANT), book, deadline)
    assert ex.status == 201, (sim.supi, ex.status, ex.response)
    sim.ref = ex.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    granted = sim.granted
    while granted > 0:
        await asyncio.sleep(0.02)  # an SMF's traffic takes a moment
        used = Usage(granted // 4, granted - granted // 4)
        ex = await reliably(sim, lambda u=used: sim.update(u, requested=GRANT),  # type: ignore[misc]
                            book, deadline)
        assert ex.status == 200, (sim.supi, ex.status, ex.response)
        book.add(sim.supi, used.total)
        granted = sim.granted
    ex = await reliably(sim, lambda: sim.release(None), book, deadline)
    assert ex.status == 204, (sim.supi, ex.status, ex.response)
