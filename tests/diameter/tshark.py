"""Wireshark's dissector (Debian's ``tshark``) over the NF's Diameter traffic: a capture on
loopback while a test runs, and the check both tshark tests make of it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.debian import package

TSHARK = Path("/usr/bin/tshark")
# What each captured Diameter message is decoded into.
FIELDS = ("diameter.cmd.code", "diameter.flags.request", "diameter.Result-Code",
          "_ws.expert.message")


@contextmanager
def capturing(port: int, out: Path, log: Path) -> Iterator[None]:
    """Capture TCP ``port`` on loopback into ``out`` until the block ends (tshark is
    installed first if missing; the test is skipped where it cannot capture)."""
    package("tshark", TSHARK)
    with log.open("wb") as err:
        proc = subprocess.Popen([str(TSHARK), "-i", "lo", "-f", f"tcp port {port}",
                                 "-w", str(out)], stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 20
    while b"Capture started" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip(f"tshark cannot capture on lo here: {log.read_text()[-300:]}")
        time.sleep(0.05)
    time.sleep(1.0)  # "started" is said a moment before packets are taken
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def decode(cap: Path, port: int, *fields: str) -> list[list[str]]:
    args = [str(TSHARK), "-r", str(cap), "-d", f"tcp.port=={port},diameter", "-Y", "diameter",
            "-T", "fields", "-E", "separator=|"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, timeout=60, check=True).stdout.decode()
    return [line.split("|") for line in out.splitlines() if line.strip()]


def decoded_cleanly(cap: Path, port: int, commands: Sequence[int | str]) -> list[list[str]]:
    """The capture's messages as ``FIELDS``, after checking that each of ``commands`` was
    seen as a request and as an answer and that no message drew an expert warning."""
    rows = decode(cap, port, *FIELDS)
    seen = [(r[0], r[1]) for r in rows]
    for cmd in map(str, commands):
        assert (cmd, "1") in seen and (cmd, "0") in seen, (cmd, seen)
    assert [r[3] for r in rows if r[3]] == [], rows
    return rows
