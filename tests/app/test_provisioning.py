"""The provisioning and care API through Quart's test client, on the real database."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from nf.clock import FakeClock
from nf.config import Settings
from nf.ledger.part import LedgerPart
from nf.ledger.port import CounterChange
from nf.runtime import Runtime
from nf.store.mongo import Db
from nf.wiring import create_app

BASE = "/provisioning/v1"
ADMIN = {"X-API-Key": "demo-admin-key"}
LUMEN = {"X-API-Key": "demo-key-lumen"}
HARBOR = {"X-API-Key": "demo-key-harbor"}
S1 = "imsi-001010000000901"
S2 = "imsi-001010000000902"


class Recorder:
    def __init__(self) -> None:
        self.changes: list[CounterChange] = []

    async def counters_changed(self, changes: Any) -> None:
        self.changes.extend(changes)


@pytest.fixture
async def app(settings: Settings, db: Db, clock: FakeClock) -> Quart:
    a = create_app(settings, role="oam", db=db, clock=clock)
    for part in a.extensions["nf.parts"]:
        await part.ensure_indexes()
    return a


@pytest.fixture
def recorder(app: Quart) -> Recorder:
    rec = Recorder()
    rt: Runtime = app.extensions["nf.runtime"]
    rt.counter_listeners.append(rec)
    return rec


async def _create(app: Quart, supi: str = S1, headers: dict[str, str] = LUMEN,
                  **extra: Any) -> Any:
    body = {"supi": supi, "homeNetwork": "northwind", "planOfferId": "lumen-capped-2gb",
            "gpsi": "msisdn-15550000901", **extra}
    return await app.test_client().post(f"{BASE}/subscribers", json=body, headers=headers)


async def _wallets(db: Db) -> list[dict[str, Any]]:
    return [d async for d in db["ledger_wallets"].find({})]


async def test_create_read_update_delete(app: Quart, db: Db) -> None:
    c = app.test_client()
    r = await _create(app)
    assert r.status_code == 201
    body = await r.get_json()
    assert body["brand"] == "lumen" and body["plan"]["offerId"] == "lumen-capped-2gb"
    assert r.headers["Location"].endswith(S1)
    r = await c.get(f"{BASE}/subscribers/{S1}", headers=LUMEN)
    assert r.status_code == 200 and (await r.get_json())["status"] == "active"
    r = await c.patch(f"{BASE}/subscribers/{S1}", json={"status": "blocked"}, headers=LUMEN)
    got = await r.get_json()
    assert r.status_code == 200 and got["status"] == "blocked"
    assert got["speed"]["reason"] == "blocked"
    r = await _create(app)
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    r = await c.delete(f"{BASE}/subscribers/{S1}", headers=LUMEN)
    assert r.status_code == 204
    r = await c.get(f"{BASE}/subscribers/{S1}", headers=LUMEN)
    assert r.status_code == 404 and (await r.get_json())["cause"] == "USER_NOT_FOUND"
    assert await _wallets(db) == []


async def test_purchase_and_balance_publish_changes(app: Quart, recorder: Recorder) -> None:
    c = app.test_client()
    await _create(app)
    r = await c.post(f"{BASE}/subscribers/{S1}/purchases", json={"offerId": "lumen-boost-1h"},
                     headers=LUMEN)
    assert r.status_code == 201
    bal = await r.get_json()
    assert bal["speed"]["reason"] == "boost" and bal["speed"]["boostEndsAt"]
    # The change left with the purchase's write; its worker (not running here) delivers.
    ledger = next(p for p in app.extensions["nf.parts"] if isinstance(p, LedgerPart))
    assert await ledger.effects.flush() == 1
    assert recorder.changes and recorder.changes[-1].speed.reason == "boost"
    r = await c.post(f"{BASE}/subscribers/{S1}/purchases",
                     json={"offerId": "lumen-roam-north-1gb-1d"}, headers=LUMEN)
    assert r.status_code == 201
    r = await c.get(f"{BASE}/subscribers/{S1}/balance", headers=LUMEN)
    bal = await r.get_json()
    kinds = sorted(b["kind"] for b in bal["buckets"])
    assert kinds == ["plan", "roaming"]
    plan = next(b for b in bal["buckets"] if b["kind"] == "plan")
    assert plan["remainingBytes"] == 2 * 1024**3 and plan["validTo"] is None
    roam = next(b for b in bal["buckets"] if b["kind"] == "roaming")
    assert roam["zone"] == ["99970"] and roam["validTo"].endswith("Z")
    assert bal["counters"]["roaming"] == "available"
    assert "2.00 GB left" in bal["summary"]


async def test_cross_brand_refused_and_nothing_written(app: Quart, db: Db) -> None:
    c = app.test_client()
    await _create(app)
    before = await _wallets(db)
    # harbor's key cannot see, change, charge or delete lumen's subscriber
    assert (await c.get(f"{BASE}/subscribers/{S1}", headers=HARBOR)).status_code == 404
    assert (await c.get(f"{BASE}/subscribers/{S1}/balance",
                        headers=HARBOR)).status_code == 404
    r = await c.patch(f"{BASE}/subscribers/{S1}", json={"status": "blocked"}, headers=HARBOR)
    assert r.status_code == 404
    r = await c.post(f"{BASE}/subscribers/{S1}/purchases",
                     json={"offerId": "harbor-addon-1gb-7d"}, headers=HARBOR)
    assert r.status_code == 404
    assert (await c.delete(f"{BASE}/subscribers/{S1}", headers=HARBOR)).status_code == 404
    # nor create in lumen, nor list lumen's offers
    r = await _create(app, S2, HARBOR, brand="lumen")
    assert r.status_code == 403
    assert (await c.get(f"{BASE}/brands/lumen/offers", headers=HARBOR)).status_code == 404
    # lumen's key cannot buy harbor's offer for its own subscriber
    r = await c.post(f"{BASE}/subscribers/{S1}/purchases",
                     json={"offerId": "harbor-addon-1gb-7d"}, headers=LUMEN)
    assert r.status_code == 422 and (await r.get_json())["cause"] == "OFFER_NOT_FOUND"
    after = await _wallets(db)
    assert after == before
    # admin sees everything
    assert (await c.get(f"{BASE}/subscribers/{S1}", headers=ADMIN)).status_code == 200


@pytest.mark.parametrize(("body", "status"), [
    ({"supi": "imsi-12", "homeNetwork": "northwind"}, 400),
    ({"supi": S2, "homeNetwork": "nowhere"}, 422),
    ({"supi": S2, "homeNetwork": "northwind", "planOfferId": "nope"}, 422),
    ({"supi": S2, "homeNetwork": "northwind", "planOfferId": "lumen-addon-1gb-7d"}, 422),
    ({"supi": S2, "homeNetwork": "northwind", "planOfferId": "harbor-unlimited"}, 422),
    ({"supi": S2, "homeNetwork": "northwind", "status": "gone"}, 400),
    ({"supi": S2, "homeNetwork": "northwind", "extra": 1}, 400),
])
async def test_bad_subscriber_input(app: Quart, db: Db, body: dict[str, Any],
                                    status: int) -> None:
    r = await app.test_client().post(f"{BASE}/subscribers", json=body, headers=LUMEN)
    assert r.status_code == status and r.mimetype == "application/problem+json"
    assert (await r.get_json())["status"] == status
    assert await _wallets(db) == []


async def test_auth_required(app: Quart) -> None:
    c = app.test_client()
    r = await c.get(f"{BASE}/subscribers/{S1}")
    assert r.status_code == 401 and (await r.get_json())["cause"] == "UNAUTHORIZED"
    r = await c.get(f"{BASE}/subscribers/{S1}", headers={"X-API-Key": "guess"})
    assert r.status_code == 401
    r = await c.post(f"{BASE}/catalog/reload", headers=LUMEN)
    assert r.status_code == 403


async def test_bad_purchase_input_writes_nothing(app: Quart, db: Db) -> None:
    c = app.test_client()
    await _create(app)
    before = await _wallets(db)
    for body in ({"offerId": "nope"}, {"offerId": ""}, {"offer": "x"}, {"offerId": 5}):
        r = await c.post(f"{BASE}/subscribers/{S1}/purchases", json=body, headers=LUMEN)
        assert 400 <= r.status_code < 500
    r = await c.post(f"{BASE}/subscribers/{S2}/purchases",
                     json={"offerId": "lumen-addon-1gb-7d"}, headers=LUMEN)
    assert r.status_code == 404
    # non-stackable add-on twice: the second is refused
    ok = await c.post(f"{BASE}/subscribers/{S1}/purchases",
                      json={"offerId": "lumen-addon-video-5gb-30d"}, headers=LUMEN)
    assert ok.status_code == 201
    mid = await _wallets(db)
    r = await c.post(f"{BASE}/subscribers/{S1}/purchases",
                     json={"offerId": "lumen-addon-video-5gb-30d"}, headers=LUMEN)
    assert r.status_code == 409
    assert await _wallets(db) == mid
    assert mid != before


async def test_family_membership(app: Quart, db: Db) -> None:
    c = app.test_client()
    await _create(app)
    await _create(app, S2, gpsi="msisdn-15550000902")
    r = await c.post(f"{BASE}/groups", json={"ownerSupi": S1, "offerId": "lumen-family-30gb"},
                     headers=LUMEN)
    assert r.status_code == 201
    g = await r.get_json()
    gid = g["groupId"]
    assert [m["supi"] for m in g["members"]] == [S1]
    r = await c.post(f"{BASE}/groups/{gid}/members", json={"supi": S2, "capMb": 100},
                     headers=LUMEN)
    assert r.status_code == 201
    g = await r.get_json()
    assert {m["supi"]: m["capBytes"] for m in g["members"]} == {
        S1: 15 * 1024**3, S2: 100 * 1024**2}
    assert g["pool"]["quotaBytes"] == 30 * 1024**3
    r = await c.get(f"{BASE}/subscribers/{S2}", headers=LUMEN)
    assert (await r.get_json())["groupId"] == gid
    # another brand cannot see or join the group
    assert (await c.get(f"{BASE}/groups/{gid}", headers=HARBOR)).status_code == 404
    r = await c.post(f"{BASE}/groups/{gid}/members", json={"supi": S2, "capMb": -1},
                     headers=LUMEN)
    assert r.status_code == 400
    r = await c.post(f"{BASE}/groups/{gid}/members", json={"supi": S2}, headers=LUMEN)
    assert r.status_code == 409
    r = await c.delete(f"{BASE}/groups/{gid}/members/{S2}", headers=LUMEN)
    assert r.status_code == 204
    r = await c.get(f"{BASE}/subscribers/{S2}", headers=LUMEN)
    got = await r.get_json()
    assert got["groupId"] is None and got["plan"]["offerId"] == "lumen-capped-2gb"
    r = await c.get(f"{BASE}/groups/{gid}", headers=LUMEN)
    assert [m["supi"] for m in (await r.get_json())["members"]] == [S1]


async def test_offers_and_reload(app: Quart, settings: Settings) -> None:
    c = app.test_client()
    r = await c.get(f"{BASE}/brands/lumen/offers", headers=LUMEN)
    body = await r.get_json()
    kinds = {o["kind"] for o in body["offers"]}
    assert kinds == {"plan", "addon", "roaming_pass", "speed_boost", "family_plan"}
    r = await c.post(f"{BASE}/catalog/reload", headers=ADMIN)
    assert r.status_code == 200 and (await r.get_json())["brands"] == 9

