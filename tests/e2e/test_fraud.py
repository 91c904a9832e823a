"""Fraud protection end to end: the real ``nf serve`` (both ports), the real database and a
real HTTP/2 SMF receiver. A demo subscriber (orbit's unlimited plan, which roams without a
pass) opens sessions via two host networks at once: a case opens within 2 s with the
evidence, the throttle reaches the SMF, the brand's key sees the case and another brand's
does not, the brand's webhook hears of it, and resolving it as a false positive restores
the speed. The same for usage velocity (throttle) and purchase velocity (suspend: the
sessions are terminated, new ones refused until the case is resolved)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from nf.config import Settings
from nf.security.webhooks import SIGNATURE_HEADER, verify
from nf.store.embedded import EmbeddedDb
from tests import conformance as c
from tests.e2e.nfproc import running_nf
from tests.peers import NotificationReceiver, Received
from tests.smf_sim import PolicySim, SmfSim, Usage, httpx_transport, session_ambr

pytestmark = pytest.mark.e2e

GIB = 1024**3
ORBIT = {"X-API-Key": "demo-key-orbit", "X-Operator": "care agent 7"}
LUMEN = {"X-API-Key": "demo-key-lumen"}
PROV = "/provisioning/v1"
CASES = PROV + "/fraud/cases"
FULL = {"uplink": "15 Mbps", "downlink": "75 Mbps"}
SLOW = {"uplink": "32 Kbps", "downlink": "48 Kbps"}
HOOK_SECRET = "orbit-fraud-hook-secret-42"
PROV_DOC = str(Path(__file__).resolve().parents[2] / "openapi" / "provisioning.yaml")


def _env(settings: Settings, hook: str) -> dict[str, str]:
    fraud = {
        "poll_interval_s": 0.1, "speed_uplink_kbps": 32, "speed_downlink_kbps": 48,
        "rules": {
            "multi_network": {"action": "throttle"},
            "impossible_travel": {"action": "record"},
            "usage_velocity": {"action": "throttle", "window_s": 600,
                               "max_bytes": {"default": 3 * GIB}},
            "purchase_velocity": {"action": "suspend", "window_s": 600,
                                  "max_purchases": 2},
            "orphan_session": {"action": "off"},
        },
        "brands": {"orbit": {"webhook_url": hook, "webhook_secret": HOOK_SECRET}},
    }
    nets = [{**n.model_dump(), "default_grant_bytes": 2 * GIB} for n in settings.networks]
    return {"NF_FRAUD": json.dumps(fraud), "NF_NETWORKS": json.dumps(nets)}


def _ambr(r: Received) -> dict[str, str]:
    assert r.http_version == "2"
    c.validate_schema(c.PCF, "SmPolicyNotification", r.json)
    return session_ambr(r.json["smPolicyDecision"])


async def _case(client: httpx.AsyncClient, oam: str, supi: str, rule: str,
                timeout_s: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = await client.get(oam + CASES, headers=ORBIT, params={"supi": supi, "rule": rule})
        assert r.status_code == 200, r.text
        if r.json()["cases"]:
            return dict(r.json()["cases"][0])
        assert time.monotonic() < deadline, f"no {rule} case for {supi}"
        await asyncio.sleep(0.05)


async def _new_subscriber(client: httpx.AsyncClient, oam: str, supi: str) -> None:
    r = await client.post(oam + PROV + "/subscribers", headers=ORBIT, json={
        "supi": supi, "homeNetwork": "redmoor", "planOfferId": "orbit-unlimited"})
    assert r.status_code == 201, r.text


async def test_two_host_networks_at_once_throttle_then_false_positive_restores(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    supi = "imsi-999001000000522"
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=_env(settings, smf.url("/hook/orbit"))) as nf:
            await _new_subscriber(client, nf.oam, supi)
            home = PolicySim(client, nf.sbi, supi, smf.url("/smf/home"),
                             serving_plmn="999001", pdu_session_id=1)
            r = await home.create()
            assert r.status_code == 201, r.text
            assert session_ambr(r.json()) == FULL
            clone = PolicySim(client, nf.sbi, supi, smf.url("/smf/clone"),
                              serving_plmn="00101", pdu_session_id=1)
            assert (await clone.create()).status_code == 201
            t0 = time.monotonic()
            case = await _case(client, nf.oam, supi, "multi_network")
            opened_s = time.monotonic() - t0
            assert opened_s < 2.0, opened_s
            # The throttle reaches both sessions at the SMF.
            got = await smf.wait_for_all(lambda x: x.path in ("/smf/home/update",
                                                              "/smf/clone/update"), count=2)
            assert all(_ambr(x) == SLOW for x in got)
            # The brand's webhook heard of the case.
            hook = await smf.wait_for(lambda x: x.path == "/hook/orbit")
            assert hook.json["caseId"] == case["caseId"] and hook.json["rule"] == \
                "multi_network"
            sig = hook.header(SIGNATURE_HEADER)
            assert sig is not None and verify(HOOK_SECRET, sig, hook.body, int(time.time()))

            r = await client.get(f"{nf.oam}{CASES}/{case['caseId']}", headers=ORBIT)
            assert r.status_code == 200
            c.validate_exchange(PROV_DOC, r)
            full = r.json()
            assert full["status"] == "open" and full["applied"] == "throttle"
            assert full["evidence"]["hostNetworks"] == ["northwind", "redmoor"]
            assert full["evidence"]["servingPlmns"] == ["00101", "999001"]
            assert len(full["evidence"]["sessions"]) == 2
            # One PDU session id, two policy associations: two PDU sessions, two places.
            assert sorted((x["hostNetwork"], x["servingPlmn"])
                          for x in full["evidence"]["locations"]) == [
                ("northwind", "00101"), ("redmoor", "999001")]
            assert [a["what"] for a in full["audit"]] == ["opened", "applied throttle"]
            # Another brand's key sees nothing of it.
            r = await client.get(f"{nf.oam}{CASES}/{case['caseId']}", headers=LUMEN)
            assert r.status_code == 404
            assert r.headers["content-type"] == "application/problem+json"
            r = await client.get(nf.oam + CASES, headers=LUMEN, params={"supi": supi})
            assert r.json()["cases"] == []
            c.validate_exchange(PROV_DOC, r)
            r = await client.post(f"{nf.oam}{CASES}/{case['caseId']}/resolve", headers=LUMEN,
                                  json={"resolution": "false_positive"})
            assert r.status_code == 404

            smf.clear()
            r = await client.post(f"{nf.oam}{CASES}/{case['caseId']}/resolve", headers=ORBIT,
                                  json={"resolution": "false_positive",
                                        "note": "dual-SIM test device"})
            assert r.status_code == 200, r.text
            c.validate_exchange(PROV_DOC, r)
            done = r.json()
            assert done["status"] == "false_positive"
            assert done["audit"][-2]["who"]["operator"] == "care agent 7"
            assert done["audit"][-1]["what"] == "lifted throttle"
            back = await smf.wait_for_all(lambda x: x.path in ("/smf/home/update",
                                                               "/smf/clone/update"), count=2)
            assert all(_ambr(x) == FULL for x in back)
            r = await client.post(f"{nf.oam}{CASES}/{case['caseId']}/resolve", headers=ORBIT,
                                  json={"resolution": "confirmed"})
            assert r.status_code == 409
            c.validate_exchange(PROV_DOC, r)
            # Fraud EDRs for the detection, the action, the resolution and the lift.
            from pymongo import AsyncMongoClient
            mc: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db_server.uri)
            try:
                events = {d["event"] async for d in mc[settings.mongodb_database]["edrs"].find(
                    {"kind": "fraud", "case_id": case["caseId"]})}
            finally:
                await mc.close()
            assert events == {"detected", "action", "resolved", "lifted"}
            for p in (home, clone):
                for resp in p.responses:
                    c.validate_exchange(c.PCF, resp)


async def test_usage_and_purchase_velocity(db_server: EmbeddedDb, settings: Settings,
                                           tmp_path: Path) -> None:
    heavy, buyer = "imsi-999001000000526", "imsi-999001000000530"
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=_env(settings, smf.url("/hook/orbit"))) as nf:
            for s in (heavy, buyer):
                await _new_subscriber(client, nf.oam, s)
            # Usage velocity: 4 GiB within minutes, above the 3 GiB a window allows.
            pol = PolicySim(client, nf.sbi, heavy, smf.url("/smf/heavy"),
                            serving_plmn="999001")
            assert (await pol.create()).status_code == 201
            chg = SmfSim(httpx_transport(client, nf.sbi), heavy, plmn="999001",
                         notify_uri=smf.url("/chg/heavy"))
            assert (await chg.create(requested=2 * GIB)).status == 201
            for _ in range(2):
                ex = await chg.update(Usage(GIB, GIB, "QUOTA_THRESHOLD"), requested=2 * GIB)
                assert ex.status == 200, ex.response
            t0 = time.monotonic()
            case = await _case(client, nf.oam, heavy, "usage_velocity")
            assert time.monotonic() - t0 < 2.0
            assert case["applied"] in (None, "throttle")
            slow = await smf.wait_for(lambda x: x.path == "/smf/heavy/update")
            assert _ambr(slow) == SLOW
            r = await client.get(f"{nf.oam}{CASES}/{case['caseId']}", headers=ORBIT)
            ev = r.json()["evidence"]
            assert ev["bytes"] == 4 * GIB and ev["maxBytes"] == 3 * GIB
            smf.clear()
            r = await client.post(f"{nf.oam}{CASES}/{case['caseId']}/resolve", headers=ORBIT,
                                  json={"resolution": "false_positive"})
            assert r.status_code == 200, r.text
            back = await smf.wait_for(lambda x: x.path == "/smf/heavy/update")
            assert _ambr(back) == FULL

            # Purchase velocity: three add-ons in a row; the rule suspends the buyer.
            bp = PolicySim(client, nf.sbi, buyer, smf.url("/smf/buyer"),
                           serving_plmn="999001")
            assert (await bp.create()).status_code == 201
            bc = SmfSim(httpx_transport(client, nf.sbi), buyer, plmn="999001",
                        notify_uri=smf.url("/chg/buyer"))
            assert (await bc.create(requested=1024)).status == 201
            for _ in range(3):
                r = await client.post(f"{nf.oam}{PROV}/subscribers/{buyer}/purchases",
                                      headers=ORBIT, json={"offerId": "orbit-addon-1gb-7d"})
                assert r.status_code == 201, r.text
            t0 = time.monotonic()
            case = await _case(client, nf.oam, buyer, "purchase_velocity")
            assert time.monotonic() - t0 < 2.0
            assert case["action"] == "suspend"
            term = await smf.wait_for(lambda x: x.path == "/smf/buyer/terminate")
            c.validate_schema(c.PCF, "TerminationNotification", term.json)
            assert term.json["resourceUri"] == bp.location
            abort = await smf.wait_for(lambda x: x.path.startswith("/chg/buyer"))
            assert abort.json["notificationType"] == "ABORT_CHARGING"
            r = await client.get(f"{nf.oam}{PROV}/subscribers/{buyer}", headers=ORBIT)
            assert r.json()["status"] == "suspended"
            again = PolicySim(client, nf.sbi, buyer, smf.url("/smf/buyer2"),
                              serving_plmn="999001", pdu_session_id=2)
            assert (await again.create()).status_code == 403
            r = await client.get(f"{nf.oam}{CASES}/{case['caseId']}", headers=ORBIT)
            assert r.json()["evidence"]["purchases"] == 3
            r = await client.post(f"{nf.oam}{CASES}/{case['caseId']}/resolve", headers=ORBIT,
                                  json={"resolution": "false_positive"})
            assert r.status_code == 200, r.text
            r = await client.get(f"{nf.oam}{PROV}/subscribers/{buyer}", headers=ORBIT)
            assert r.json()["status"] == "active"
            assert (await again.create()).status_code == 201
            r = await client.get(nf.oam + CASES, headers=ORBIT,
                                 params={"status": "false_positive"})
            assert {x["rule"] for x in r.json()["cases"]} >= {"usage_velocity",
                                                              "purchase_velocity"}
            r = await client.get(nf.oam + CASES, headers=ORBIT, params={"rule": "nope"})
            assert r.status_code == 400 and r.json()["invalidParams"][0]["param"] == "rule"
            metrics = (await client.get(nf.oam + "/metrics")).text
            assert 'nf_fraud_detections_total{brand="orbit",rule="purchase_velocity"}' \
                in metrics
            assert 'resolution="false_positive"' in metrics
