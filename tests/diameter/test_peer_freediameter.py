"""Debian's freeDiameterd (freeDiameter 1.2.1) as a base-protocol peer of the real NF:
it connects and exchanges capabilities (it offers only Relay), keeps the connection
through the NF's watchdog (DWR/DWA every Tw), and disconnects with DPR on SIGINT."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import trustme

from nf.config import Settings
from nf.store.embedded import EmbeddedDb, free_port
from tests.debian import package
from tests.diameter.client import PGW, REALM
from tests.diameter.nfdia import ORIGIN_HOST, diameter_env, wait_port
from tests.e2e.nfproc import running_nf

pytestmark = pytest.mark.e2e

FD = Path("/usr/bin/freeDiameterd")
FD_HOST = "fd.peer.test"


def _conf(tmp: Path, nf_port: int) -> Path:
    ca = trustme.CA()
    cert = ca.issue_cert(FD_HOST)
    cert.private_key_pem.write_to_path(str(tmp / "fd.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "fd.pem"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    conf = tmp / "fd.conf"
    # TLS_Cred is required even for plain TCP (freeDiameter 1.2.1).
    conf.write_text(f"""
Identity = "{FD_HOST}";
Realm = "{REALM}";
Port = {free_port()};
SecPort = {free_port()};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
TwTimer = 6;
TLS_Cred = "{tmp / 'fd.pem'}", "{tmp / 'fd.key'}";
TLS_CA = "{tmp / 'ca.pem'}";
ConnectPeer = "{ORIGIN_HOST}" {{ ConnectTo = "127.0.0.1"; Port = {nf_port}; No_TLS; }};
""")
    return conf


def _wait_log(log: Path, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{text!r} not in the NF log"
        time.sleep(0.1)


def test_freediameterd_cer_watchdog_and_dpr(db_server: EmbeddedDb, settings: Settings,
                                            tmp_path: Path) -> None:
    package("freediameter", FD)
    port = free_port()
    env = diameter_env(port, peers=(PGW, FD_HOST), NF_DIAMETER__WATCHDOG_S="1")
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, extra_env=env) as nf:
        wait_port(port, nf)
        with (tmp_path / "fd.log").open("wb") as out:
            fd = subprocess.Popen([str(FD), "-c", str(_conf(tmp_path, port))],
                                  stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_log(nf.log, f'"peer":"{FD_HOST}"')  # "diameter peer open": CER/CEA 2001
            assert '"msg":"diameter peer open"' in nf.log.read_text()
            # Several of the NF's Tw (1 s): its DWRs are answered, the connection stays.
            time.sleep(4)
            assert "watchdog" not in nf.log.read_text()
            assert fd.poll() is None
            fd.send_signal(signal.SIGINT)  # freeDiameterd sends DPR (REBOOTING)
            _wait_log(nf.log, "DPR cause 0")
            assert fd.wait(30) == 0
        finally:
            if fd.poll() is None:
                fd.kill()
                fd.wait()
    fd_log = (tmp_path / "fd.log").read_text(errors="replace")
    assert "STATE_OPEN" in fd_log or "OPEN" in fd_log, fd_log[-2000:]
