"""Gy server-initiated re-authorisation (RFC 4006 §5.5) against the real NF process: a
session refused at the cap (4012), an add-on bought over the provisioning API, the RAR
(AUTHORIZE_ONLY, application 4) arriving at the PGW through the outbox, and its CCR-U
given quota again; an RAA 5002 ends the session here."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from pymongo import MongoClient

from nf.diameter import codec
from nf.diameter.base import APP_GY
from nf.diameter.gy import charging_ref
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import MIB, PGW, REALM, Client, ccr, mscc, units_of
from tests.diameter.test_e2e_gy import ADMIN, PROV, GyNf, gy_nf, provision

pytestmark = pytest.mark.e2e

INITIAL, UPDATE = 1, 2


@pytest.fixture(scope="module")
def gy(db_server: EmbeddedDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GyNf]:
    with gy_nf(db_server, tmp_path_factory.mktemp("gy-rar")) as nf:
        yield nf


def to_the_cap(pgw: Client, sid: str, imsi: str) -> int:
    """Open the session and use each grant whole until an update is refused with 4012;
    the last request number."""
    cca = pgw.call(ccr(pgw, sid, INITIAL, 0, imsi=imsi, units=[mscc(10)]))
    granted = units_of(cca)[0]["granted"]
    number = 0
    while granted:
        number += 1
        assert number < 8, "never refused at the cap"
        cca = pgw.call(ccr(pgw, sid, UPDATE, number, imsi=imsi,
                           units=[mscc(10, used=int(granted))]))  # type: ignore[arg-type]
        [u] = units_of(cca)
        granted = u["granted"]
    assert u["rc"] == codec.CREDIT_LIMIT_REACHED
    return number


def wait_request(pgw: Client, command: int, timeout_s: float = 10) -> codec.Message:
    """The next request of ``command`` the NF sends (DWRs are answered on the way)."""
    pgw.sock.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            msg = pgw.recv()
        except TimeoutError:
            raise AssertionError(f"no request {command} from the NF") from None
        h = codec.header_of(msg)
        if h.is_request and h.command == command:
            return msg
        assert time.monotonic() < deadline, f"no request {command} from the NF"


def buy(oam: str, supi: str) -> None:
    r = httpx.post(f"{oam}{PROV}/subscribers/{supi}/purchases", headers=ADMIN,
                   json={"offerId": "g-addon"})
    assert r.status_code in (200, 201), r.text


def test_an_addon_bought_at_the_cap_brings_a_gy_rar_and_quota(gy: GyNf) -> None:
    proc, port = gy.proc, gy.port
    imsi = "001010000000051"
    supi = f"imsi-{imsi}"
    provision(proc.oam, supi)
    sid = f"{PGW};51;1"
    with Client(port) as pgw:
        assert codec.result_code(pgw.cer()) == codec.SUCCESS
        number = to_the_cap(pgw, sid, imsi)
        t0 = time.monotonic()
        buy(proc.oam, supi)
        rar = wait_request(pgw, codec.CMD_RAR)
        print(f"\npurchase -> Gy RAR: {(time.monotonic() - t0) * 1000:.0f} ms")
        h = codec.header_of(rar)
        assert h.app_id == APP_GY and h.is_request
        assert codec.get_str(rar, codec.AVP_SESSION_ID) == sid
        assert rar.avps[0].code == codec.AVP_SESSION_ID
        assert codec.get_int(rar, codec.AVP_AUTH_APPLICATION_ID) == APP_GY
        assert codec.get_int(rar, 285) == 0  # Re-Auth-Request-Type AUTHORIZE_ONLY
        assert codec.get_int(rar, 432) == 10  # the rating group refused at the cap
        assert codec.get_str(rar, 293) == PGW and \
            codec.get_str(rar, codec.AVP_DESTINATION_REALM) == REALM
        pgw.send(codec.answer(rar, codec.LIMITED_SUCCESS, PGW, REALM))  # 2002: will ask
        cca = pgw.call(ccr(pgw, sid, UPDATE, number + 1, imsi=imsi,
                           units=[mscc(10, used=0, reasons=[7])]))  # FORCED_REAUTHORISATION
        assert codec.result_code(cca) == codec.SUCCESS
        [u] = units_of(cca)
        assert u["rc"] == codec.SUCCESS and u["granted"] == MIB


def test_raa_5002_ends_the_gy_session(gy: GyNf) -> None:
    proc, port = gy.proc, gy.port
    imsi = "001010000000052"
    supi = f"imsi-{imsi}"
    provision(proc.oam, supi)
    sid = f"{PGW};52;1"
    with Client(port) as pgw:
        pgw.cer()
        number = to_the_cap(pgw, sid, imsi)
        buy(proc.oam, supi)
        rar = wait_request(pgw, codec.CMD_RAR)
        pgw.send(codec.answer(rar, codec.UNKNOWN_SESSION_ID, PGW, REALM))
        # The PGW no longer has the session: it ends here (its EDR says so), and a late
        # CCR-U of it is 5002.
        with MongoClient(gy.settings.mongodb_uri) as client:
            coll = client[gy.settings.mongodb_database]["edrs"]
            deadline = time.monotonic() + 10
            while not coll.find_one({"charging_data_ref": charging_ref("northwind", sid),
                                     "event": "peer_gone"}):
                assert time.monotonic() < deadline, "the session did not end"
                time.sleep(0.05)
        cca = pgw.call(ccr(pgw, sid, UPDATE, number + 1, imsi=imsi, units=[mscc(10, used=0)]))
        assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID
