"""Gy end to end against the real NF process: a PGW's credit-control session drawing on
the same balance as the SBI, to the cap with Final-Unit-Indication, the per-MSCC results
(4012, 5031 when roaming without a pass), 5030 for an unknown subscriber, and the EDRs
recording the interface."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from nf.config import Settings
from nf.diameter import codec
from nf.diameter.gy import charging_ref
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import MIB, Client, ccr, mscc, units_of
from tests.diameter.nfdia import BLUEPEAK_PGW, BLUEPEAK_REALM, diameter_nf
from tests.e2e.nfproc import NfProcess

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).parent / "nf-gy.yaml"
ADMIN = {"X-API-Key": "gy-admin-key", "X-Operator": "gy test"}
PROV = "/provisioning/v1"
IMSI = "001010000000001"
SUPI = f"imsi-{IMSI}"
INITIAL, UPDATE, TERMINATION = 1, 2, 3


@dataclass
class GyNf:
    proc: NfProcess
    port: int
    settings: Settings


@contextlib.contextmanager
def gy_nf(db_server: EmbeddedDb, work: Path, *, bluepeak: bool = False,
          extra_env: dict[str, str] | None = None) -> Iterator[GyNf]:
    """An NF with Gy on a database of its own (dropped afterwards), for one module's tests
    (each test has subscribers of its own)."""
    name = "t_" + uuid.uuid4().hex[:12]
    settings = Settings.load(CONFIG, mongodb_uri=db_server.uri, mongodb_database=name)
    with diameter_nf(db_server.uri, name, work, bluepeak=bluepeak,
                     extra_env={"NF_CONFIG": str(CONFIG), **(extra_env or {})}
                     ) as (proc, port):
        yield GyNf(proc, port, settings)
    with MongoClient(db_server.uri) as client:
        client.drop_database(name)


@pytest.fixture(scope="module")
def gy(db_server: EmbeddedDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GyNf]:
    with gy_nf(db_server, tmp_path_factory.mktemp("gy"), bluepeak=True) as nf:
        yield nf


def provision(oam: str, supi: str = SUPI, plan: str = "g-capped") -> None:
    r = httpx.post(oam + PROV + "/subscribers", headers=ADMIN, json={
        "supi": supi, "brand": "gyco", "homeNetwork": "northwind", "planOfferId": plan})
    assert r.status_code == 201, r.text


def used_bytes(oam: str, supi: str = SUPI) -> int:
    r = httpx.get(f"{oam}{PROV}/subscribers/{supi}/balance", headers=ADMIN)
    assert r.status_code == 200, r.text
    return sum(int(b["usedBytes"]) for b in r.json()["buckets"])


def edrs(settings: Settings, ref: str, count: int, timeout_s: float = 15) -> list[Any]:
    with MongoClient(settings.mongodb_uri) as client:
        coll = client[settings.mongodb_database]["edrs"]
        deadline = time.monotonic() + timeout_s
        while True:
            docs = list(coll.find({"charging_data_ref": ref}).sort("invocation_sequence_number"))
            if len(docs) >= count or time.monotonic() > deadline:
                return docs
            time.sleep(0.1)


def test_gy_session_to_the_cap_with_fui(gy: GyNf) -> None:
    proc, port = gy.proc, gy.port
    imsi = "001010000000011"
    provision(proc.oam, f"imsi-{imsi}")
    sid = "pgw1.northwind.test;1;100"
    with Client(port) as pgw:
        assert codec.result_code(pgw.cer()) == codec.SUCCESS
        cca = pgw.call(ccr(pgw, sid, INITIAL, 0, imsi=imsi, units=[mscc(10, rsu=True)]))
        assert codec.result_code(cca) == codec.SUCCESS
        assert cca.avps[0].code == codec.AVP_SESSION_ID
        assert codec.get_int(cca, 416) == INITIAL and codec.get_int(cca, 415) == 0
        [u] = units_of(cca)
        assert u == {"rg": 10, "rc": 2001, "granted": MIB, "validity": 600,
                     "vqt": MIB * 20 // 100, "fua": None}
        # Use each grant whole until the last one comes with FUI (the plan blocks at 3 MiB).
        number, fui_seen = 0, False
        while not fui_seen:
            number += 1
            assert number < 6, "no final unit indication before the cap"
            cca = pgw.call(ccr(pgw, sid, UPDATE, number, units=[mscc(10, used=MIB)]))
            assert codec.result_code(cca) == codec.SUCCESS
            [u] = units_of(cca)
            assert u["rc"] == codec.SUCCESS and u["granted"], u
            fui_seen = u["fua"] == 0  # TERMINATE (the brand's final unit action)
        # The final units used: the next update is refused with 4012 and FUI, no grant.
        number += 1
        cca = pgw.call(ccr(pgw, sid, UPDATE, number, units=[mscc(10, used=int(u["granted"]))]))
        [u] = units_of(cca)
        assert u["rc"] == codec.CREDIT_LIMIT_REACHED and u["granted"] is None
        assert u["fua"] == 0
        number += 1
        cca = pgw.call(ccr(pgw, sid, TERMINATION, number, units=[mscc(10, rsu=None, used=0)]))
        assert codec.result_code(cca) == codec.SUCCESS
    assert used_bytes(proc.oam, f"imsi-{imsi}") == 3 * MIB  # exactly the cap
    docs = edrs(gy.settings, charging_ref("northwind", sid), number + 1)
    assert [d["event"] for d in docs] == ["create"] + ["update"] * (number - 1) + ["release"]
    assert {d["interface"] for d in docs} == {"gy"}
    assert sum(d["used_total"] for d in docs) == 3 * MIB


def test_unknown_subscriber_5030_and_roaming_needs_a_pass(gy: GyNf) -> None:
    proc, port = gy.proc, gy.port
    imsi = "001010000000012"
    provision(proc.oam, f"imsi-{imsi}")
    with Client(port) as pgw:
        pgw.cer()
        cca = pgw.call(ccr(pgw, "pgw1;u;1", INITIAL, 0, imsi="001019999999999",
                           units=[mscc(10)]))
        assert codec.result_code(cca) == codec.USER_UNKNOWN
        cca = pgw.call(ccr(pgw, "pgw1;u;2", INITIAL, 0, imsi=None, units=[mscc(10)]))
        assert codec.result_code(cca) == codec.USER_UNKNOWN
        # Served by 999-70 (3GPP-SGSN-MCC-MNC): roaming; the plan needs a pass there.
        cca = pgw.call(ccr(pgw, "pgw1;r;1", INITIAL, 0, imsi=imsi, units=[mscc(10)],
                           sgsn_plmn="99970"))
        assert [u["rc"] for u in units_of(cca)] == [5031]  # RATING_FAILED
        r = httpx.post(f"{proc.oam}{PROV}/subscribers/imsi-{imsi}/purchases", headers=ADMIN,
                       json={"offerId": "g-roam-north"})
        assert r.status_code in (200, 201), r.text
        # The same zone told by 3GPP-User-Location-Info (TAI+ECGI, MCC 999 MNC 70).
        uli = bytes([130, 0x99, 0xF9, 0x07]) + bytes(9)
        cca = pgw.call(ccr(pgw, "pgw1;r;2", INITIAL, 0, imsi=imsi, units=[mscc(10)], uli=uli))
        [u] = units_of(cca)
        assert u["rc"] == codec.SUCCESS and u["granted"] == MIB
        # Without the PLMN: at home, the plan's own allowance.
        cca = pgw.call(ccr(pgw, "pgw1;h;1", INITIAL, 0, imsi=imsi, units=[mscc(10)]))
        assert [u["rc"] for u in units_of(cca)] == [codec.SUCCESS]


def test_update_of_unknown_session_5002_and_metrics(gy: GyNf) -> None:
    with Client(gy.port) as pgw:
        pgw.cer()
        cca = pgw.call(ccr(pgw, "pgw1;none;1", UPDATE, 1, units=[mscc(10, used=10)]))
        assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID
        text = httpx.get(gy.proc.oam + "/metrics").text  # every process's, on OAM
        assert 'nf_diameter_answers_total{application="4",command="272",result="5002"}' in text
        assert 'nf_diameter_request_duration_seconds_count{application="4"}' in text
        peers = [ln for ln in text.splitlines() if ln.startswith("nf_diameter_peers ")]
        assert peers and float(peers[0].split()[1]) >= 1, peers


def test_event_debits_once(gy: GyNf) -> None:
    proc, port = gy.proc, gy.port
    imsi = "001010000000013"
    provision(proc.oam, f"imsi-{imsi}")
    with Client(port) as pgw:
        pgw.cer()
        ids = pgw.ids()
        cca = pgw.call(ccr(pgw, "pgw1;ev;1", 4, 0, imsi=imsi,
                           units=[mscc(10, rsu=None, used=5000)], ids=ids))
        assert codec.result_code(cca) == codec.SUCCESS
        assert codec.get_int(cca, 416) == 4
        again = pgw.call(ccr(pgw, "pgw1;ev;1", 4, 0, imsi=imsi,
                             units=[mscc(10, rsu=None, used=5000)], retransmit=True,
                             ids=(ids[0] + 7, ids[1])))
        assert codec.result_code(again) == codec.SUCCESS
    assert used_bytes(proc.oam, f"imsi-{imsi}") == 5000
    docs = edrs(gy.settings, charging_ref("northwind", "pgw1;ev;1"), 2)
    assert [(d["event"], d["interface"]) for d in docs] == [("create", "gy"), ("release", "gy")]


def test_another_host_networks_peer_cannot_touch_the_session(gy: GyNf) -> None:
    """A PGW of bluepeak naming a northwind Session-Id finds no session (5002) and charges
    nothing; the northwind PGW's session goes on."""
    imsi = "001010000000014"
    provision(gy.proc.oam, f"imsi-{imsi}")
    sid = "pgw1.northwind.test;14;1"
    with Client(gy.port) as pgw, Client(gy.port, BLUEPEAK_PGW, BLUEPEAK_REALM) as other:
        pgw.cer()
        assert codec.result_code(other.cer()) == codec.SUCCESS
        pgw.call(ccr(pgw, sid, INITIAL, 0, imsi=imsi, units=[mscc(10)]))
        for rtype in (UPDATE, TERMINATION):
            cca = other.call(ccr(other, sid, rtype, 1, imsi=imsi,
                                 units=[mscc(10, used=MIB // 2)]))
            assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID
        assert used_bytes(gy.proc.oam, f"imsi-{imsi}") == 0
        cca = pgw.call(ccr(pgw, sid, UPDATE, 1, imsi=imsi, units=[mscc(10, used=1000)]))
        assert [u["rc"] for u in units_of(cca)] == [codec.SUCCESS]
    assert used_bytes(gy.proc.oam, f"imsi-{imsi}") == 1000


def test_e164_only_subscription_id_finds_the_subscriber_by_gpsi(gy: GyNf) -> None:
    """A CCR-I whose only Subscription-Id is END_USER_E164: the subscriber whose GPSI is
    msisdn-<that number> is charged; a number nobody has is 5030."""
    proc, port = gy.proc, gy.port
    imsi, msisdn = "001010000000031", "15550000031"
    r = httpx.post(proc.oam + PROV + "/subscribers", headers=ADMIN, json={
        "supi": f"imsi-{imsi}", "gpsi": f"msisdn-{msisdn}", "brand": "gyco",
        "homeNetwork": "northwind", "planOfferId": "g-capped"})
    assert r.status_code == 201, r.text
    sid = "pgw1.northwind.test;e164;1"
    with Client(port) as pgw:
        pgw.cer()
        cca = pgw.call(ccr(pgw, sid, INITIAL, 0, imsi=None, msisdn="+" + msisdn,
                           units=[mscc(10, rsu=True)]))
        assert codec.result_code(cca) == codec.SUCCESS
        [u] = units_of(cca)
        assert u["rc"] == codec.SUCCESS and u["granted"] == MIB
        cca = pgw.call(ccr(pgw, sid, TERMINATION, 1, imsi=None, msisdn=msisdn,
                           units=[mscc(10, rsu=None, used=MIB // 2)]))
        assert codec.result_code(cca) == codec.SUCCESS
        for n, other in enumerate(("15550000039", "not-a-number")):
            cca = pgw.call(ccr(pgw, f"pgw1.northwind.test;e164;x{n}", INITIAL, 0, imsi=None,
                               msisdn=other, units=[mscc(10)]))
            assert codec.result_code(cca) == codec.USER_UNKNOWN
    assert used_bytes(proc.oam, f"imsi-{imsi}") == MIB // 2
    docs = edrs(gy.settings, charging_ref("northwind", sid), 2)
    assert [(d["event"], d["supi"], d["gpsi"]) for d in docs] == [
        (e, f"imsi-{imsi}", f"msisdn-{msisdn}") for e in ("create", "release")]
