"""Subscriber notices end to end: a real SMSC written by somebody else (npm ``smpp`` in
server mode), the real ``nf serve`` over HTTP/2, the real database. A demo subscriber goes
through 50%, 80% and 100% of a plan, the throttle and an add-on purchase; the NF restarts in
the middle. The SMSC must see exactly one ``submit_sm`` per event, with the destination from
the GPSI, the brand's source address and the brand's template text, and the delivery
receipts must show in the care view."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from nf.clock import SystemClock
from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from nf.store.mongo import Db
from tests.e2e.nfproc import running_nf
from tests.ledger import helpers as h
from tests.smf_sim import SmfSim, Usage, httpx_transport
from tests.subnotify.smsc import PASSWORD, SYSTEM_ID, running_smsc

pytestmark = pytest.mark.e2e

SUPI = "imsi-001010000004242"
GPSI = "msisdn-34600111222"
ADMIN = {"X-API-Key": "demo-admin-key"}
MIB = 1024 * 1024
TZ = "Europe/Madrid"


def nf_env(smsc_port: int) -> dict[str, str]:
    return {
        "NF_CATALOG_DIR": str(h.TEST_CATALOG),
        "NF_SMS__ENABLED": "true",
        "NF_SMS__PORT": str(smsc_port),
        "NF_SMS__SYSTEM_ID": SYSTEM_ID,
        "NF_SMS__PASSWORD": PASSWORD,
        "NF_SMS__BRANDS": json.dumps({"testco": {"source_addr": "TestCo"}}),
        "NF_NOTICES__BRANDS": json.dumps({"testco": {"time_zone": TZ, "topup": "*123#"}}),
        "NF_NOTICES__POLL_INTERVAL_S": "0.5",
    }


def check_schema(name: str, body: Any) -> None:
    """``body`` against a schema of our ``openapi/provisioning.yaml``."""
    spec = yaml.safe_load((Path(__file__).parents[2] / "openapi" / "provisioning.yaml")
                          .read_text())
    OAS30Validator({"$ref": f"#/components/schemas/{name}",
                    "components": spec["components"]}).validate(body)


def day(t: datetime) -> str:
    return t.astimezone(ZoneInfo(TZ)).strftime("%d %b %Y")


def pdu_view(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("source_addr", "source_addr_ton", "source_addr_npi",
                              "destination_addr", "dest_addr_ton", "dest_addr_npi",
                              "esm_class", "data_coding", "registered_delivery", "message")}


def pdu(text: str) -> dict[str, Any]:
    return {"source_addr": "TestCo", "source_addr_ton": 5, "source_addr_npi": 0,
            "destination_addr": "34600111222", "dest_addr_ton": 1, "dest_addr_npi": 1,
            "esm_class": 0, "data_coding": 0, "registered_delivery": 1, "message": text}


def in_event_order(pdus: list[dict[str, Any]], groups: list[int]) -> list[Any]:
    """The PDUs cut into one slice per event, each slice sorted by its text."""
    out: list[Any] = []
    start = 0
    for size in groups:
        out.append(sorted(pdus[start:start + size], key=lambda p: str(p["message"])))
        start += size
    out.append(pdus[start:])
    return out


async def test_usage_throttle_and_purchase_sms_once_each_across_a_restart(
        db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path) -> None:
    ledger = h.make_ledger(db, settings, h.TEST_CATALOG)
    await ledger.ensure_indexes()
    now = SystemClock().now()
    await h.subscriber(ledger, now, SUPI, "t-unlimited", brand="testco", gpsi=GPSI)
    got = await ledger.wallet(SUPI, now)
    assert got is not None and got[1].period_end is not None
    renews = day(got[1].period_end)
    expected: list[str] = []
    # Texts caused by one event leave in no promised order among themselves (the usage
    # threshold and the throttle are separate notices); events stay in order.
    groups: list[int] = []

    with running_smsc(tmp_path) as smsc:
        async with httpx.AsyncClient(http2=True, http1=False, timeout=10) as client:

            async def step(nf_sbi: str, smf: SmfSim, used: int, *texts: str) -> None:
                ex = await smf.update(Usage(0, used, "QUOTA_THRESHOLD"), 3 * MIB)
                assert ex.status == 200, ex.response
                expected.extend(texts)
                groups.append(len(texts))
                await smsc.wait(
                    lambda rs: len([r for r in rs if r["pdu"] == "submit_sm"]) >= len(expected))

            env = nf_env(smsc.port)
            with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                            extra_env=env) as nf:
                smf = SmfSim(httpx_transport(client, nf.sbi), SUPI)
                assert (await smf.create(requested=3 * MIB)).status == 201
                await step(nf.sbi, smf, 3 * MIB)  # 30%: nothing
                await step(nf.sbi, smf, 2 * MIB,  # 50%
                           f"Test Co: you have used 50% of your 10 MB data (5 MB). "
                           f"It renews on {renews}.")
                await step(nf.sbi, smf, 3 * MIB,  # 80%
                           f"Test Co: you have used 80% of your 10 MB data (8 MB). "
                           f"It renews on {renews}.")
                # The answer got lost: the SMF sends the same update again.
                assert (await smf.retransmit()).status == 200
            # The NF restarts between 80% and 100%.
            with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                            extra_env=env) as nf:
                smf.transport = httpx_transport(client, nf.sbi)
                assert (await smf.retransmit()).status == 200
                await step(nf.sbi, smf, 2 * MIB,  # 100%: the plan throttles
                           f"Test Co: you have used 100% of your 10 MB data (10 MB). "
                           f"It renews on {renews}.",
                           f"Test Co: your full-speed data is used up; speed is now 128 kbps "
                           f"until {renews}. Top up: *123#")
                r = await client.post(f"{nf.oam}/provisioning/v1/subscribers/{SUPI}/purchases",
                                      json={"offerId": "t-addon-2"}, headers=ADMIN)
                assert r.status_code == 201, r.text
                addon = next(b for b in r.json()["buckets"] if b["offerId"] == "t-addon-2")
                ends = datetime.fromisoformat(addon["validTo"].replace("Z", "+00:00"))
                expected += [
                    f"Test Co: 2 MiB 7 days is active: 2 MB until "
                    f"{ends.astimezone(ZoneInfo(TZ)).strftime('%d %b %Y %H:%M')}.",
                    "Test Co: full speed is back (10 Mbps)."]
                groups.append(2)
                await smsc.wait(
                    lambda rs: len([x for x in rs if x["pdu"] == "submit_sm"]) >= len(expected))
                # Every receipt reaches the care view; the add-on's reminders wait there.
                deadline = time.monotonic() + 15
                while True:
                    r = await client.get(
                        f"{nf.oam}/provisioning/v1/subscribers/{SUPI}/notifications",
                        headers={"X-API-Key": "demo-admin-key"})
                    assert r.status_code == 200, r.text
                    listing = r.json()
                    items = listing["notifications"]
                    sent = [i for i in items if i["state"] != "scheduled"]
                    if time.monotonic() > deadline or (len(sent) == len(expected) and all(
                            i["state"] == "delivered" for i in sent)):
                        break
                    await asyncio.sleep(0.1)
                # Another brand's key sees nothing of this subscriber.
                r = await client.get(
                    f"{nf.oam}/provisioning/v1/subscribers/{SUPI}/notifications",
                    headers={"X-API-Key": "demo-key-lumen"})
                assert r.status_code == 404
                assert r.headers["content-type"].startswith("application/problem+json")
        await asyncio.sleep(0.5)  # nothing more arrives late
        subs = smsc.submits()
    assert in_event_order([pdu_view(s) for s in subs], groups) == \
        in_event_order([pdu(t) for t in expected], groups)
    assert len({s["message_id"] for s in subs}) == len(expected)
    check_schema("NoticeList", listing)
    assert sorted(i["text"] for i in sent) == sorted(expected)
    assert {(i["channel"], i["state"], i["destination"]) for i in sent} == {
        ("sms", "delivered", "34600111222")}
    assert all(i["sentAt"] and i["doneAt"] for i in sent)
    later = sorted((i["event"], i["dueAt"]) for i in items if i["state"] == "scheduled")
    day_before = (ends - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%S")
    assert [e for e, _ in later] == ["addon_expired", "addon_expiring"]
    assert later[1][1].startswith(day_before) and later[0][1].startswith(
        ends.strftime("%Y-%m-%dT%H:%M:%S"))
