"""A PGW that restarted (RFC 6733 §8.16: its Origin-State-Id went up) against the real NF
process: the Gy sessions it opened before are released, so their reservations return to
the wallet, whether the new value comes in its CER or in a later request (a PGW behind a
DRA)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from nf.diameter import codec
from nf.diameter.gy import charging_ref
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import MIB, Client, ccr, mscc, units_of
from tests.diameter.test_e2e_gy import ADMIN, PROV, GyNf, edrs, gy_nf, provision

pytestmark = pytest.mark.e2e

INITIAL, UPDATE = 1, 2


@pytest.fixture(scope="module")
def gy(db_server: EmbeddedDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GyNf]:
    with gy_nf(db_server, tmp_path_factory.mktemp("gy-restart")) as nf:
        yield nf


def state(n: int) -> codec.Avp:
    return codec.new_avp(codec.AVP_ORIGIN_STATE_ID, n)


def reserved(oam: str, supi: str) -> int:
    r = httpx.get(f"{oam}{PROV}/subscribers/{supi}/balance", headers=ADMIN)
    assert r.status_code == 200, r.text
    return sum(int(b["reservedBytes"]) for b in r.json()["buckets"])


def until(check: object, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_a_pgw_restarting_releases_its_sessions_reservations(gy: GyNf) -> None:
    proc, port = gy.proc, gy.port
    imsi = "001010000000041"
    supi = f"imsi-{imsi}"
    provision(proc.oam, supi)
    old, other = "pgw1.northwind.test;41;1", "pgw1.northwind.test;41;2"
    with Client(port) as pgw:
        assert codec.result_code(pgw.cer(extra=[state(7)])) == codec.SUCCESS
        # Its CCRs need not repeat the Origin-State-Id: the CER's is the client's.
        for sid, extra in ((old, [state(7)]), (other, [])):
            cca = pgw.call(ccr(pgw, sid, INITIAL, 0, imsi=imsi, units=[mscc(10)],
                               extra=extra))
            assert [u["granted"] for u in units_of(cca)] == [MIB]
        assert reserved(proc.oam, supi) == 2 * MIB
        # It reconnects with the same Origin-State-Id (a lost connection, no restart).
    with Client(port) as pgw:
        pgw.cer(extra=[state(7)])
        cca = pgw.call(ccr(pgw, old, UPDATE, 1, imsi=imsi, units=[mscc(10, used=MIB // 4)],
                           extra=[state(7)]))
        assert codec.result_code(cca) == codec.SUCCESS
        assert reserved(proc.oam, supi) == 2 * MIB
    # It restarted: the CER says so; both sessions end and their reservations return.
    with Client(port) as pgw:
        assert codec.result_code(pgw.cer(extra=[state(8)])) == codec.SUCCESS
        until(lambda: reserved(proc.oam, supi) == 0)
        cca = pgw.call(ccr(pgw, old, UPDATE, 2, imsi=imsi, units=[mscc(10, used=0)],
                           extra=[state(8)]))
        assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID
        # A session opened under the new value is not touched by it.
        new = "pgw1.northwind.test;41;3"
        cca = pgw.call(ccr(pgw, new, INITIAL, 0, imsi=imsi, units=[mscc(10)],
                           extra=[state(8)]))
        assert [u["granted"] for u in units_of(cca)] == [MIB]
        pgw.dwr()
        assert reserved(proc.oam, supi) == MIB
        # Behind a DRA the CER is the DRA's: the PGW's restart shows in its next request.
        # The session opened before it ends, the one that request opens stays.
        newer = "pgw1.northwind.test;41;4"
        cca = pgw.call(ccr(pgw, newer, INITIAL, 0, imsi=imsi, units=[mscc(10)],
                           extra=[state(9)]))
        assert [u["granted"] for u in units_of(cca)] == [MIB]
        assert reserved(proc.oam, supi) == MIB
        cca = pgw.call(ccr(pgw, new, UPDATE, 1, imsi=imsi, units=[mscc(10, used=0)],
                           extra=[state(9)]))
        assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID
    # The usage reported before the restart stays charged; the ends are in the EDRs.
    docs = edrs(gy.settings, charging_ref("northwind", old), 3)
    assert sorted(d["event"] for d in docs) == ["create", "peer_restarted", "update"]
    assert sum(d["used_total"] for d in docs) == MIB // 4
