"""No single request or second process can hurt the others, against the real ``nf serve``
over HTTP/2 and the real database.

- A ChargingDataRequest carrying an integer beyond what is stored (2^63) gets a 400
  ProblemDetails naming the field at once, and the 50 ordinary requests sent at the same
  moment are all answered normally (their EDRs stored, nothing restarted).
- A second ``nf serve`` on ports that are in use exits non-zero naming the port, while the
  first keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from nf.config import Settings
from nf.store.embedded import EmbeddedDb, free_port
from tests.e2e.nfproc import ROOT, TEST_CONFIG, NfProcess, running_nf
from tests.smf_sim import CHF_ROOT, SmfSim, httpx_transport

pytestmark = pytest.mark.e2e

ADMIN = {"x-api-key": "demo-admin-key"}
SUBSCRIBERS = [f"imsi-0010190000{i:05d}" for i in range(10)]
SESSIONS_EACH = 5


def seed(nf: NfProcess) -> None:
    with httpx.Client(base_url=nf.oam, headers=ADMIN, timeout=30) as c:
        for supi in SUBSCRIBERS:
            r = c.post("/provisioning/v1/subscribers",
                       json={"supi": supi, "brand": "lumen", "homeNetwork": "northwind",
                             "planOfferId": "lumen-capped-2gb"})
            assert r.status_code == 201, r.text


def bad_requests(sim: SmfSim) -> list[tuple[str, dict[str, Any], str]]:
    """(name, body, the invalidParams pointer expected) for the unknown subscriber."""
    base = sim.body(requested=1000)
    huge = json.loads(json.dumps(base))
    huge["multipleUnitUsage"][0]["requestedUnit"]["totalVolume"] = 2**63
    ext = json.loads(json.dumps(base))
    ext["vendorExtension"] = {"counter": 2**63}
    nul = json.loads(json.dumps(base))
    nul["pDUSessionChargingInformation"]["a\x00b"] = 1
    neg = json.loads(json.dumps(base))
    neg["multipleUnitUsage"][0]["requestedUnit"]["totalVolume"] = -(2**63) - 1
    return [("2^63 volume", huge, "/multipleUnitUsage/0/requestedUnit/totalVolume"),
            ("2^63 extension", ext, "/vendorExtension/counter"),
            ("NUL key", nul, "/pDUSessionChargingInformation/a\\u0000b"),
            ("-2^63-1 volume", neg, "/multipleUnitUsage/0/requestedUnit/totalVolume")]


def assert_bad(name: str, r: httpx.Response, pointer: str) -> None:
    assert r.status_code == 400, f"{name}: {r.status_code} {r.text}"
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert pointer in [p["param"] for p in problem["invalidParams"]], (name, problem)


def test_a_2_63_request_is_refused_at_once_and_its_neighbours_are_served(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    uri, database = db_server.uri, settings.mongodb_database
    with running_nf(uri, database, tmp_path) as nf:
        seed(nf)

        async def scenario() -> None:
            async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as client:
                post = httpx_transport(client, nf.sbi)
                stranger = SmfSim(post, supi="imsi-001019999999999")
                path = nf.sbi + CHF_ROOT + "/chargingdata"
                # Alone: a 400 naming the field, well within 100 ms (best of 5 on a
                # shared host; every one within 1 s).
                name, huge, pointer = bad_requests(stranger)[0]
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    r = await client.post(path, json=huge)
                    times.append(time.perf_counter() - t0)
                    assert_bad(name, r, pointer)
                assert min(times) < 0.1 and max(times) < 1.0, times

                # Together: 50 ordinary creates and every bad request at the same moment.
                sims = [SmfSim(post, supi=s, pdu_session_id=k + 1)
                        for s in SUBSCRIBERS for k in range(SESSIONS_EACH)]
                bad = bad_requests(stranger)

                async def timed_bad(body: dict[str, Any]) -> tuple[httpx.Response, float]:
                    t0 = time.perf_counter()
                    resp = await client.post(path, json=body)
                    return resp, time.perf_counter() - t0

                good, answered_bad = await asyncio.gather(
                    asyncio.gather(*(s.create(requested=1000) for s in sims)),
                    asyncio.gather(*(timed_bad(b) for _, b, _ in bad)))
                for (name, _, pointer), (resp, _t) in zip(bad, answered_bad, strict=True):
                    assert_bad(name, resp, pointer)
                for ex in good:
                    assert ex.status == 201, (ex.status, ex.response)
                    assert ex.response["multipleUnitInformation"][0]["grantedUnit"][
                        "totalVolume"] > 0
                lat = sorted(ex.latency_s for ex in good)
                print(f"50 creates alongside bad requests: p50 {statistics.median(lat):.3f}"
                      f" s, max {lat[-1]:.3f} s; bad: "
                      f"{[round(t, 3) for _, t in answered_bad]}")
                # Nobody waited for a stuck batch (the EDR wait deadline is 10 s).
                assert lat[-1] < 8.0, lat
                # The NF still serves afterwards.
                again = await sims[0].update(None, requested=1000)
                assert again.status == 200, again.response

        asyncio.run(scenario())
        with MongoClient(uri) as c:
            # Every ordinary request's EDR is stored (an update's EDR is stored just after
            # its answer, by the drain of its wallet write); no bad one wrote anything.
            want = len(SUBSCRIBERS) * SESSIONS_EACH + 1
            stored = 0
            for _ in range(100):
                stored = c[database]["edrs"].count_documents({"supi": {"$in": SUBSCRIBERS}})
                if stored >= want:
                    break
                time.sleep(0.05)
            assert stored == want
            assert c[database]["edrs"].count_documents(
                {"supi": "imsi-001019999999999"}) == 0
        log = nf.log.read_text()
        assert "background worker failed" not in log and "Traceback" not in log, log[-3000:]


def second_nf(sbi_port: int, oam_port: int, uri: str, database: str
              ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({"NF_CONFIG": str(TEST_CONFIG), "NF_MONGODB_URI": uri,
                "NF_MONGODB_DATABASE": database + "_other",
                "NF_SERVER__SBI_PORT": str(sbi_port), "NF_SERVER__OAM_PORT": str(oam_port),
                "NF_SERVER__WORKERS": "2"})
    return subprocess.run([sys.executable, "-m", "nf.cli", "serve"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_a_second_nf_on_busy_ports_exits_naming_the_port(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    uri, database = db_server.uri, settings.mongodb_database
    with running_nf(uri, database, tmp_path, workers=2) as nf:
        sbi_port = int(nf.sbi.rsplit(":", 1)[1])
        oam_port = int(nf.oam.rsplit(":", 1)[1])
        res = second_nf(sbi_port, oam_port, uri, database)
        assert res.returncode == 3, (res.returncode, res.stderr[-2000:])
        assert f"SBI port {sbi_port}" in res.stderr and "in use" in res.stderr, res.stderr
        res = second_nf(free_port(), oam_port, uri, database)
        assert res.returncode == 3 and f"OAM port {oam_port}" in res.stderr, res.stderr
        # The first NF is untouched and still serves on its two SBI workers.
        with httpx.Client(http1=False, http2=True, timeout=5) as c:
            assert c.get(nf.sbi + "/healthz").status_code == 200
        assert httpx.get(nf.oam + "/readyz", timeout=5).status_code == 200
    # A port held by any other program counts too.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        res = second_nf(port, free_port(), uri, database)
        assert res.returncode == 3 and f"SBI port {port}" in res.stderr, res.stderr
