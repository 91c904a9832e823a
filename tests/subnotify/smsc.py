"""The test SMSC: ``smsc.js`` on the npm package ``smpp`` 0.5.1 (somebody else's SMPP
implementation), installed once per machine into ``~/.cache/mvno-nf/node-smpp-0.5.1``
under a lock. Tests skip only where Node.js is missing."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nf.store.embedded import free_port

SMPP_VERSION = "0.5.1"
CACHE = Path(os.environ.get("NF_CACHE_DIR", Path.home() / ".cache" / "mvno-nf"))
HERE = Path(__file__).parent
SYSTEM_ID, PASSWORD = "nfesme", "secret1"


def node_modules() -> Path:
    """``node_modules`` holding ``smpp``; installs it on first use (skip without Node)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node, npm) is not installed: no test SMSC")
    home = CACHE / f"node-smpp-{SMPP_VERSION}"
    done = home / "node_modules" / "smpp" / "package.json"
    if done.exists():
        return home / "node_modules"
    home.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"node-smpp-{SMPP_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent",
                                "--prefix", str(home), f"smpp@{SMPP_VERSION}"],
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0 or not done.exists():
                pytest.fail(f"npm install smpp@{SMPP_VERSION} failed:\n{r.stderr[-2000:]}")
    return home / "node_modules"


@dataclass
class Smsc:
    port: int
    out: Path
    proc: subprocess.Popen[bytes]

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]

    def submits(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["pdu"] == "submit_sm" and not r.get("throttled")]

    def wait_sync(self, pred: Any, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            recs = self.records()
            if pred(recs):
                return recs
            time.sleep(0.05)
        raise AssertionError(f"SMSC: condition not met in {timeout_s}s; got {self.records()}")

    async def wait(self, pred: Any, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            recs = self.records()
            if pred(recs):
                return recs
            await asyncio.sleep(0.02)
        raise AssertionError(f"SMSC: condition not met in {timeout_s}s; got {self.records()}")


@contextmanager
def running_smsc(tmp: Path, throttle_first: int = 0, stat: str = "DELIVRD"
                 ) -> Iterator[Smsc]:
    mods = node_modules()
    port = free_port()
    out = tmp / f"smsc-{port}.jsonl"
    env = {**os.environ, "NODE_PATH": str(mods)}
    with open(tmp / f"smsc-{port}.log", "wb") as errs:
        proc = subprocess.Popen(["node", str(HERE / "smsc.js"), str(port), str(out),
                                 SYSTEM_ID, PASSWORD, str(throttle_first), stat], env=env,
                                stdout=errs, stderr=subprocess.STDOUT)
    s = Smsc(port, out, proc)
    try:
        s.wait_sync(lambda rs: any(r["pdu"] == "listening" for r in rs), 20)
        yield s
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
