"""Graceful shutdown of the real ``nf serve`` under Granian and Hypercorn, and the ASGI
lifespan doing its work (indexes before readiness, background workers started and flushed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from nf.config import Settings
from nf.store.embedded import EmbeddedDb, free_port
from tests.e2e.h2raw import RawH2
from tests.e2e.nfproc import NfProcess, running_nf, wait_ready

pytestmark = pytest.mark.e2e

PROBE = {"NF_EXTRA_PARTS": '["tests.e2e.probe_part:make"]', "PROBE_FLUSH_S": "0.3"}


def markers(uri: str, database: str, kind: str) -> list[dict[str, Any]]:
    with MongoClient(uri) as c:
        return list(c[database]["probe_markers"].find({"kind": kind}, {"_id": 0}))


def wait_markers(uri: str, database: str, kind: str, n: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while len(markers(uri, database, kind)) < n:
        assert time.monotonic() < deadline, f"{kind} markers: {markers(uri, database, kind)}"
        time.sleep(0.05)


def log_lines(nf: NfProcess) -> list[dict[str, Any]]:
    out = []
    for line in nf.log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_signal_drains_in_flight_flushes_workers_and_exits_0(
    server: str, sig: int, db_server: EmbeddedDb, settings: Settings, tmp_path: Path,
) -> None:
    uri, database = db_server.uri, settings.mongodb_database
    with running_nf(uri, database, tmp_path, server=server, extra_env=PROBE) as nf:
        # The lifespan ran in both server processes: workers started (readiness implies
        # the indexes were made).
        wait_markers(uri, database, "started", 2)
        result: dict[str, Any] = {}

        def slow() -> None:
            # A client that, like an SMF, keeps reading after a graceful GOAWAY.
            host, port = nf.sbi.removeprefix("http://").split(":")
            c = RawH2(host, int(port))
            try:
                r = c.get("/probe/slow?s=2")
                result["status"], result["body"] = r.status, json.loads(r.body)
            except (OSError, ValueError) as e:
                result["error"] = repr(e)
            finally:
                c.close()

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.7)  # the request is being handled
        signalled = time.monotonic()
        nf.proc.send_signal(sig)
        # New connections are refused while the in-flight request finishes.
        refused = False
        while t.is_alive() and not refused:
            try:
                with httpx.Client(http1=False, http2=True, timeout=1) as c:
                    c.get(nf.sbi + "/healthz")
            except httpx.HTTPError:
                refused = True
            time.sleep(0.05)
        t.join(30)
        code = nf.proc.wait(30)
        elapsed = time.monotonic() - signalled
    assert result.get("status") == 200, result
    assert result["body"]["slept_s"] == 2.0
    assert refused
    assert code == 0, nf.log.read_text()
    assert elapsed < 5 + 5  # within shutdown_grace_s (5 s in nfproc) plus start-up slack
    # Every process's worker saw ``stopping`` and flushed while the database was open.
    started = {m["pid"] for m in markers(uri, database, "started")}
    flushed = {m["pid"] for m in markers(uri, database, "flushed")}
    assert len(started) == 2 and flushed == started
    stopped = [x for x in log_lines(nf) if x.get("msg") == "stopped" and "role" in x]
    assert sorted(x["role"] for x in stopped) == ["oam", "sbi"]
    assert all(x["database_closed"] and x["workers_flushed"] for x in stopped)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_demo_serves_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """`make run` in small: `nf demo` on ephemeral ports with a throw-away data directory."""
    sbi_port, oam_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nf.cli", "demo", "--data", str(tmp_path / "data"),
             "--db-port", "0", "--sbi-port", str(sbi_port), "--oam-port", str(oam_port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    sbi, oam = f"http://127.0.0.1:{sbi_port}", f"http://127.0.0.1:{oam_port}"
    try:
        nf = NfProcess(proc, sbi, oam, log)
        wait_ready(nf, None, timeout_s=180)
        with httpx.Client(http1=False, http2=True) as c:
            r = c.get(sbi + "/does-not-exist")
        assert r.http_version == "HTTP/2" and r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["cause"] == "RESOURCE_NOT_FOUND"
        ready = httpx.get(oam + "/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        # What README's example shows.
        assert ready.json() == {"status": "ready", "database": True, "indexes": True,
                                "sbi": True, "nrf": "off"}
        procs = descendants(proc.pid)
        assert len(procs) >= 3  # the database and the two servers (and their workers)
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert code == 0, text
    deadline = time.monotonic() + 10
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in procs if alive(p)] == [], text
    assert "embedded database: SecantusDB" in text and "stopped (embedded database" in text
    # The demo serves HTTP/1.1 on the SBI port as well, and says so.
    assert f"SBI (h2c and HTTP/1.1) on http://127.0.0.1:{sbi_port}, " in text
    assert (tmp_path / "data" / "db").is_dir()
