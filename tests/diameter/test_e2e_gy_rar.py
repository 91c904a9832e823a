"""Gy server-initiated requests against the real NF process. Re-authorisation (RFC 4006
§5.5): a session refused at the cap (4012), an add-on bought over the provisioning API,
the RAR (AUTHORIZE_ONLY, application 4) arriving at the PGW through the outbox, and its
CCR-U given quota again; an RAA 5002 ends the session here. Abort (RFC 6733 §8.5): a
subscriber blocked over the provisioning API gets an ASR on each open Gy session, the
PGW's ASA and CCR-T end it. A push enqueued while its PGW is away goes out when the PGW
is back (its CER wakes the sender).

The NF's outbox poll is made far longer than any wait here: each push is enqueued by
the OAM process and must reach the Diameter process by its wake (``nf.notify.wake``)."""

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
from tests.diameter.nfdia import ORIGIN_HOST, ORIGIN_REALM
from tests.diameter.test_e2e_gy import ADMIN, PROV, GyNf, edrs, gy_nf, provision, used_bytes

pytestmark = pytest.mark.e2e

INITIAL, UPDATE, TERMINATION = 1, 2, 3
WAIT_S = 5.0  # for a push; the outbox poll is far longer


@pytest.fixture(scope="module")
def gy(db_server: EmbeddedDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GyNf]:
    with gy_nf(db_server, tmp_path_factory.mktemp("gy-rar"),
               extra_env={"NF_DIAMETER__PUSH_POLL_INTERVAL_S": "60"}) as nf:
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


def wait_request(pgw: Client, command: int, timeout_s: float = WAIT_S) -> codec.Message:
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


def subscriber(gy: GyNf, n: int) -> tuple[str, str, str]:
    """A subscriber of the test's own (IMSI ending in ``n``), provisioned: its IMSI, SUPI
    and the Session-Id of its Gy session."""
    imsi = f"0010100000000{n:02d}"
    provision(gy.proc.oam, f"imsi-{imsi}")
    return imsi, f"imsi-{imsi}", f"{PGW};{n};1"


def test_an_addon_bought_at_the_cap_brings_a_gy_rar_and_quota(gy: GyNf) -> None:
    proc, port = gy.proc, gy.port
    imsi, supi, sid = subscriber(gy, 51)
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
    imsi, supi, sid = subscriber(gy, 52)
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


def test_a_blocked_subscriber_s_gy_session_is_aborted_by_asr(gy: GyNf) -> None:
    """Blocked over the provisioning API: the CHF's abort becomes an ASR (application 4,
    addressed to the PGW) on the open session; the PGW answers ASA 2001 and ends the
    session with CCR-T, whose usage is charged; the session is gone then."""
    proc, port = gy.proc, gy.port
    imsi, supi, sid = subscriber(gy, 53)
    with Client(port) as pgw:
        assert codec.result_code(pgw.cer()) == codec.SUCCESS
        cca = pgw.call(ccr(pgw, sid, INITIAL, 0, imsi=imsi, units=[mscc(10)]))
        assert [u["rc"] for u in units_of(cca)] == [codec.SUCCESS]
        t0 = time.monotonic()
        r = httpx.patch(f"{proc.oam}{PROV}/subscribers/{supi}", headers=ADMIN,
                        json={"status": "blocked"})
        assert r.status_code == 200, r.text
        asr = wait_request(pgw, codec.CMD_ASR)
        print(f"\nblock -> Gy ASR: {(time.monotonic() - t0) * 1000:.0f} ms")
        h = codec.header_of(asr)
        assert h.app_id == APP_GY and h.is_request and h.flags & codec.FLAG_PROXIABLE
        assert asr.avps[0].code == codec.AVP_SESSION_ID
        assert codec.get_str(asr, codec.AVP_SESSION_ID) == sid
        assert codec.get_int(asr, codec.AVP_AUTH_APPLICATION_ID) == APP_GY
        assert codec.get_str(asr, codec.AVP_ORIGIN_HOST) == ORIGIN_HOST
        assert codec.get_str(asr, codec.AVP_ORIGIN_REALM) == ORIGIN_REALM
        assert codec.get_str(asr, 293) == PGW and \
            codec.get_str(asr, codec.AVP_DESTINATION_REALM) == REALM
        pgw.send(codec.answer(asr, codec.SUCCESS, PGW, REALM))  # ASA
        # The PGW tears the session down (RFC 4006 §5.5.2 after an ASR): CCR-T with what
        # was used since the grant.
        cca = pgw.call(ccr(pgw, sid, TERMINATION, 1, imsi=imsi,
                           units=[mscc(10, rsu=None, used=MIB // 4)]))
        assert codec.result_code(cca) == codec.SUCCESS
        docs = edrs(gy.settings, charging_ref("northwind", sid), 2)
        assert [(d["event"], d["interface"]) for d in docs] == [("create", "gy"),
                                                                ("release", "gy")]
        cca = pgw.call(ccr(pgw, sid, UPDATE, 2, imsi=imsi, units=[mscc(10, used=0)]))
        assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID
        # A blocked subscriber opens no new session.
        cca = pgw.call(ccr(pgw, f"{PGW};53;2", INITIAL, 0, imsi=imsi, units=[mscc(10)]))
        assert [u["rc"] for u in units_of(cca)] != [codec.SUCCESS], cca.avps
    assert used_bytes(proc.oam, supi) == MIB // 4
    with MongoClient(gy.settings.mongodb_uri) as client:
        outbox = client[gy.settings.mongodb_database]["outbox"]
        abort = outbox.find_one({"kind": "chf.abort",
                                 "resource": charging_ref("northwind", sid)})
        assert abort is not None and abort["status"] == "sent", abort
        assert abort["diameter_peer"] == PGW and abort["attempts"] == 0


def test_a_push_waiting_for_its_pgw_goes_out_when_it_is_back(gy: GyNf) -> None:
    """The add-on is bought while the PGW is disconnected: the RAR waits in the outbox,
    and goes out as soon as the PGW's CER is through, not at the next poll."""
    proc, port = gy.proc, gy.port
    imsi, supi, sid = subscriber(gy, 54)
    with Client(port) as pgw:
        pgw.cer()
        to_the_cap(pgw, sid, imsi)
    buy(proc.oam, supi)
    with MongoClient(gy.settings.mongodb_uri) as client:
        outbox = client[gy.settings.mongodb_database]["outbox"]
        ref = charging_ref("northwind", sid)
        deadline = time.monotonic() + WAIT_S
        while outbox.find_one({"resource": ref, "status": "pending"}) is None:
            assert time.monotonic() < deadline, "the RAR was never enqueued"
            time.sleep(0.05)
    with Client(port) as pgw:
        t0 = time.monotonic()
        assert codec.result_code(pgw.cer()) == codec.SUCCESS
        rar = wait_request(pgw, codec.CMD_RAR, timeout_s=2.0)
        print(f"\nCER -> waiting Gy RAR: {(time.monotonic() - t0) * 1000:.0f} ms")
        assert codec.get_str(rar, codec.AVP_SESSION_ID) == sid
        pgw.send(codec.answer(rar, codec.SUCCESS, PGW, REALM))
