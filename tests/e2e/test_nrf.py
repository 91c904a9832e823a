"""Registration with an NRF somebody else wrote: free5GC's NRF (built from the Go module
proxy once per machine, tests/nrf_peer.py) on the embedded database, and the real
``nf serve``. Skipped only where Go is missing.

The NF registers a CHF and a PCF profile; discovery by ``target-nf-type`` finds them; the
NRF loses them while running (and answers heartbeats with 2xx all the same), and the NF,
reading its profiles back, registers again; the NRF is killed and restarted with its
registrations lost, and the NF registers again; a graceful stop deregisters both.

The NF talks HTTP/1.1 to this NRF (``nrf.http2: false``): built with current Go, its h2c
server ends most new connections from an asyncio HTTP/2 client with GOAWAY before the
first stream (1 of 20 requests answered here, against 20 of 20 over HTTP/1.1). Discovery
from the test itself uses h2c (retried).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from nf.config import Settings
from nf.nrf.profile import instance_id
from nf.store.embedded import EmbeddedDb
from tests.e2e.nfproc import running_nf
from tests.nrf_peer import NrfProcess, NrfUnavailable, build_nrf

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def nrf_binary() -> Path:
    try:
        return build_nrf()
    except NrfUnavailable as e:
        pytest.skip(f"{e}; CI has Go")


def eventually(what: str, check: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout_s}s (last: {last!r})")


def discovered(nrf: NrfProcess, nf_type: str) -> list[dict[str, Any]]:
    r = nrf.discover(nf_type)
    if r.status_code != 200:
        return []
    return list(r.json().get("nfInstances") or [])


def test_registers_rediscovers_reregisters_and_deregisters(
        nrf_binary: Path, db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    nrf_db = settings.mongodb_database + "_nrf"
    nrf = NrfProcess(nrf_binary, tmp_path / "nrf", db_server.uri, nrf_db)
    nrf.start()
    ids = {t: instance_id(settings, t) for t in ("CHF", "PCF")}
    env = {"NF_NRF__URI": nrf.uri, "NF_NRF__HEARTBEAT_S": "2", "NF_NRF__HTTP2": "false",
           "NF_NRF__PROFILE_CHECK_S": "1",
           "NF_NRF__INITIAL_BACKOFF_S": "0.2", "NF_NRF__MAX_BACKOFF_S": "1",
           "NF_NRF__SUPI_RANGES": '[{"start": "001010000000000", "end": "001019999999999"}]',
           "NF_NRF__DNNS": '["internet"]'}
    mongo: MongoClient[dict[str, Any]] = MongoClient(db_server.uri)
    try:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            # Registration: discovery finds each profile under its own NF type.
            chf = eventually("CHF discovery", lambda: [
                p for p in discovered(nrf, "CHF") if p["nfInstanceId"] == ids["CHF"]])[0]
            pcf = eventually("PCF discovery", lambda: [
                p for p in discovered(nrf, "PCF") if p["nfInstanceId"] == ids["PCF"]])[0]
            assert {s["serviceName"] for s in chf["nfServices"]} == {
                "nchf-convergedcharging", "nchf-spendinglimitcontrol"}
            assert [s["serviceName"] for s in pcf["nfServices"]] == ["npcf-smpolicycontrol"]
            svc = chf["nfServices"][0]
            port = int(nf.sbi.rsplit(":", 1)[1])
            assert svc["ipEndPoints"][0]["port"] == port and svc["scheme"] == "http"
            assert chf["chfInfo"]["supiRangeList"][0]["start"] == "001010000000000"
            assert pcf["pcfInfo"]["dnnList"] == ["internet"]
            assert not discovered(nrf, "PCF") or all(
                p["nfType"] == "PCF" for p in discovered(nrf, "PCF"))
            ready = httpx.get(nf.oam + "/readyz", timeout=30).json()
            assert ready["nrf"]["CHF"]["state"] == "registered"
            assert ready["nrf"]["PCF"]["nfInstanceId"] == ids["PCF"]

            # The NRF loses both profiles while it runs and still answers heartbeats with
            # 2xx: reading the profiles back finds them gone, and the NF registers again.
            mongo[nrf_db].drop_collection("NfProfile")
            eventually("re-registration after a silent loss", lambda: (
                "the NRF no longer holds this profile" in nf.log.read_text()
                and {p["nfInstanceId"] for t in ("CHF", "PCF") for p in discovered(nrf, t)}
                >= set(ids.values())), timeout_s=30)

            # The NRF dies: the NF stays ready and says the NRF is unreachable.
            nrf.stop()
            # Both registrations must have seen the outage: free5GC's NRF answers a
            # heartbeat for a profile it lost with 2xx, so one that missed the outage
            # would never register again.
            ready = eventually("readyz reporting the NRF outage", lambda: (
                lambda b: b if all(b["nrf"][t]["state"] != "registered"
                                   for t in ("CHF", "PCF")) else None)(
                httpx.get(nf.oam + "/readyz", timeout=30).json()))
            assert ready["status"] == "ready"
            # It comes back having lost every registration: the NF registers again.
            mongo[nrf_db].drop_collection("NfProfile")
            nrf.start()
            eventually("re-registration", lambda: {
                p["nfInstanceId"] for t in ("CHF", "PCF") for p in discovered(nrf, t)
            } >= set(ids.values()), timeout_s=30)
            eventually("readyz registered again", lambda: httpx.get(
                nf.oam + "/readyz", timeout=30).json()["nrf"]["PCF"]["state"]
                == "registered")
            log_before_stop = nf.log.read_text()
            code = nf.stop()
        assert code == 0
        assert "registered with the NRF" in log_before_stop
        # Graceful stop: both profiles are gone from the NRF.
        for t in ("CHF", "PCF"):
            assert ids[t] not in {p["nfInstanceId"] for p in discovered(nrf, t)}
        assert "deregistered from the NRF" in nf.log.read_text()
    finally:
        nrf.stop()
        mongo.drop_database(nrf_db)
        mongo.close()
