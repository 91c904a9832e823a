"""A Gy session captured on loopback and decoded by Wireshark's dissector (Debian's
``tshark``): every message decodes as what it is, with no expert warning (unknown AVP or
vendor, bad length, non-zero padding, unknown command)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import MIB, Client, ccr, mscc
from tests.diameter.nfdia import diameter_nf
from tests.diameter.test_e2e_gy import CONFIG, provision
from tests.diameter.tshark import capturing, decoded_cleanly

pytestmark = pytest.mark.e2e


def test_gy_session_decodes_without_expert_warning(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    cap = tmp_path / "gy.pcapng"
    with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                     extra_env={"NF_CONFIG": str(CONFIG)}) as (nf, port):
        provision(nf.oam)
        with capturing(port, cap, tmp_path / "tshark.log"):
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
    rows = decoded_cleanly(cap, port, (257, 272, 280, 282))
    results = {code for r in rows if r[1] == "0" for code in r[2].split(",") if code}
    assert {"2001", "5030"} <= results, rows
