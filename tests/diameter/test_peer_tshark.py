"""A Gy session captured on loopback and decoded by Wireshark's dissector (Debian's
``tshark``): every message decodes as what it is, with no expert warning (unknown AVP or
vendor, bad length, non-zero padding, unknown command)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.debian import package
from tests.diameter.client import MIB, Client, ccr, mscc
from tests.diameter.nfdia import diameter_nf
from tests.diameter.test_e2e_gy import CONFIG, provision

pytestmark = pytest.mark.e2e

TSHARK = Path("/usr/bin/tshark")


def _capture(port: int, out: Path, log: Path) -> subprocess.Popen[bytes]:
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
    return proc


def decode(cap: Path, port: int, *fields: str) -> list[list[str]]:
    args = [str(TSHARK), "-r", str(cap), "-d", f"tcp.port=={port},diameter", "-Y", "diameter",
            "-T", "fields", "-E", "separator=|"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, timeout=60, check=True).stdout.decode()
    return [line.split("|") for line in out.splitlines() if line.strip()]


def test_gy_session_decodes_without_expert_warning(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    package("tshark", TSHARK)
    cap = tmp_path / "gy.pcapng"
    with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                     extra_env={"NF_CONFIG": str(CONFIG)}) as (nf, port):
        provision(nf.oam)
        tshark = _capture(port, cap, tmp_path / "tshark.log")
        try:
            sid = "pgw1.northwind.test;42;1"
            uli = bytes([130, 0x00, 0xF1, 0x10]) + bytes(9)
            with Client(port) as pgw:
                pgw.cer()
                # (RSU with a volume: an empty grouped AVP is legal but Wireshark flags it.)
                pgw.call(ccr(pgw, sid, 1, 0, units=[mscc(10, rsu=MIB)], sgsn_plmn="00101",
                             uli=uli))
                pgw.call(ccr(pgw, sid, 2, 1, units=[mscc(10, rsu=MIB, used=500_000)]))
                pgw.call(ccr(pgw, sid, 3, 2, units=[mscc(10, rsu=None, used=100)]))
                pgw.call(ccr(pgw, "pgw1.northwind.test;42;2", 1, 0, imsi="001019999999999",
                             units=[mscc(10, rsu=MIB)]))  # 5030
                pgw.dwr()
                pgw.dpr()
            time.sleep(0.5)
        finally:
            tshark.send_signal(signal.SIGINT)
            tshark.wait(30)
    rows = decode(cap, port, "diameter.cmd.code", "diameter.flags.request",
                  "diameter.Result-Code", "_ws.expert.message")
    seen = [(r[0], r[1]) for r in rows]
    for cmd in ("257", "272", "280", "282"):
        assert (cmd, "1") in seen and (cmd, "0") in seen, (cmd, seen)
    assert [r[3] for r in rows if r[3]] == [], rows
    results = {code for r in rows if r[1] == "0" for code in r[2].split(",") if code}
    assert {"2001", "5030"} <= results, rows
