"""Reports on the OAM port (Quart's test client, real database): brand scope, formats,
live source, errors; and the purchase EDR written by the provisioning API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from nf.clock import FakeClock
from nf.config import Settings
from nf.reports.export import Exporter
from nf.store.mongo import Db
from nf.wiring import create_app
from tests.reports import helpers as h

URL = "/provisioning/v1/reports"
ADMIN = {"X-API-Key": "demo-admin-key"}
LUMEN = {"X-API-Key": "demo-key-lumen"}
T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
WINDOW = "from=2026-11-03&to=2026-11-03"


@pytest.fixture
async def app(settings: Settings, db: Db, tmp_path: Path) -> Quart:
    export = settings.edr.export.model_copy(update={"dir": tmp_path})
    s = settings.model_copy(update={"edr": settings.edr.model_copy(update={"export": export})})
    a = create_app(s, role="oam", db=db, clock=FakeClock(T0 + timedelta(hours=5)))
    for part in a.extensions["nf.parts"]:
        await part.ensure_indexes()
    await db.edrs.insert_many([
        h.charging("l1", T0, h.party("imsi-001010000000001"), ul=10, dl=90),
        h.charging("h1", T0, h.party("imsi-001020000000005", "harbor", "bluepeak"),
                   ul=1, dl=2),
        h.purchase("p1", T0, h.party("imsi-001010000000001"), "lumen-addon-1gb-7d")])
    await Exporter(db, tmp_path).export(T0, T0 + timedelta(hours=1))
    return a


async def test_brand_scope(app: Quart) -> None:
    c = app.test_client()
    r = await c.get(f"{URL}/usage?{WINDOW}", headers=ADMIN)
    body = await r.get_json()
    assert r.status_code == 200 and body["report"] == "usage"
    assert {row["brand"] for row in body["rows"]} == {"lumen", "harbor"}
    r = await c.get(f"{URL}/usage?{WINDOW}", headers=LUMEN)
    body = await r.get_json()
    assert [(x["brand"], x["bytes_total"]) for x in body["rows"]] == [("lumen", 100)]
    assert body["brand"] == "lumen"
    r = await c.get(f"{URL}/usage?{WINDOW}&brand=harbor", headers=LUMEN)
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    r = await c.get(f"{URL}/usage?{WINDOW}")
    assert r.status_code == 401


async def test_formats_and_live(app: Quart, db: Db) -> None:
    c = app.test_client()
    r = await c.get(f"{URL}/uptake?{WINDOW}&format=csv", headers=LUMEN)
    text = (await r.get_data()).decode()
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert text.splitlines()[1].startswith("2026-11-03,lumen,lumen-addon-1gb-7d,addon,USD,1")
    r = await c.get(f"{URL}/usage?{WINDOW}&format=png", headers=ADMIN)
    assert r.status_code == 200 and (await r.get_data())[:4] == b"\x89PNG"
    # Not exported yet: only the live source sees it.
    await db.edrs.insert_one(h.charging("l2", T0 + timedelta(hours=2),
                                        h.party("imsi-001010000000001"), ul=0, dl=1000))
    r = await c.get(f"{URL}/usage?{WINDOW}", headers=LUMEN)
    assert (await r.get_json())["rows"][0]["bytes_total"] == 100
    r = await c.get(f"{URL}/usage?{WINDOW}&source=live", headers=LUMEN)
    assert (await r.get_json())["rows"][0]["bytes_total"] == 1100


@pytest.mark.parametrize(("query", "status"), [
    ("from=2026-11-03&to=yesterday", 400),
    ("from=2026-11-05&to=2026-11-03", 400),
    ("from=2025-01-01&to=2026-11-03", 400),
    ("format=xml", 400),
    ("source=live&from=2026-11-01&to=2026-11-03", 400),
    ("n=many", 400),
])
async def test_bad_queries_are_problems(app: Quart, query: str, status: int) -> None:
    r = await app.test_client().get(f"{URL}/top?{query}", headers=ADMIN)
    assert r.status_code == status and r.mimetype == "application/problem+json"
    assert (await r.get_json())["detail"]


async def test_unknown_report(app: Quart) -> None:
    r = await app.test_client().get(f"{URL}/profit", headers=ADMIN)
    assert r.status_code == 400 and (await r.get_json())["cause"] == "INVALID_QUERY_PARAM"


async def test_a_purchase_writes_a_purchase_edr(app: Quart, db: Db) -> None:
    """The EDR rides the purchase's durable counter change (``nf.edr.purchases``), so it
    is stored by the background delivery, within moments of the answer."""
    async with app.test_app() as ta:
        await _purchase_and_check(ta.test_client(), db)


async def _purchase_and_check(c: Any, db: Db) -> None:
    supi = "imsi-001010000000555"
    r = await c.post("/provisioning/v1/subscribers", headers=LUMEN, json={
        "supi": supi, "homeNetwork": "northwind", "planOfferId": "lumen-capped-2gb",
        "gpsi": "msisdn-15550000555"})
    assert r.status_code == 201
    r = await c.post(f"/provisioning/v1/subscribers/{supi}/purchases", headers=LUMEN,
                     json={"offerId": "lumen-roam-north-1gb-1d"})
    assert r.status_code == 201
    bought = [b for b in (await r.get_json())["buckets"]
              if b["offerId"] == "lumen-roam-north-1gb-1d"]
    edr = None
    for _ in range(100):
        edr = await db.edrs.find_one({"kind": "purchase", "supi": supi})
        if edr is not None:
            break
        await asyncio.sleep(0.05)
    assert edr is not None
    assert (edr["offer_id"], edr["offer_kind"], edr["price_cents"], edr["currency"],
            edr["zone_name"], edr["brand"], edr["host_network"], edr["gpsi"]) == (
        "lumen-roam-north-1gb-1d", "roaming_pass", 500, "USD", "north zone", "lumen",
        "northwind", "msisdn-15550000555")
    assert edr["bucket_ids"] == [b["bucketId"] for b in bought] and len(bought) == 1
