"""A whole day of a subscriber in a few seconds of fake time, over real HTTP/2 both ways:
the test SMF opens an SM policy and a charging session, uses data through the CHF until the
cap, receives the throttle, the subscriber buys an add-on through the provisioning API, the
SMF receives the restore, the UE roams into a pass zone, and the session is released.
Then the same for a family whose pool runs dry. Every exchange is validated against the
3GPP documents (TS 29.512, TS 32.291). Fraud protection reads the day's records as they
come: the border crossing (the policy moves to the pass zone before the charging session
reports it) is one PDU session moving, not a subscriber on two networks at once, so the
day ends without a fraud case."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from nf.clock import FakeClock
from nf.config import Settings
from nf.store.mongo import Db
from tests import conformance as c
from tests.ledger import helpers as h
from tests.pcf.harness import ambr_of as _ambr_of
from tests.pcf.harness import serving
from tests.pcf.harness import use_until_throttled as _use_until_throttled
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, Usage, httpx_transport, session_ambr

MIB = 1024 * 1024
ADMIN = {"X-API-Key": "demo-admin-key"}
PROV = "/provisioning/v1"
HOUR = 3600.0


@pytest.fixture
def test_settings(settings: Settings) -> Settings:
    # Small numbers: t-unlimited is 10 MiB at full speed, then 64/128 kbps. The day jumps
    # hours at a time with one charging session: CHF supervision (real-time rounds over
    # the fake clock) stays out of the way.
    chf = settings.chf.model_copy(update={"supervision_sweep_interval_s": 3600.0})
    return settings.model_copy(update={"catalog_dir": h.TEST_CATALOG, "chf": chf})


@pytest.fixture
def nf_urls(test_settings: Settings, db: Db, clock: FakeClock) -> Iterator[tuple[str, str]]:
    with serving(test_settings, clock) as urls:
        yield urls


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as cl:
        yield cl


async def _provision(client: httpx.AsyncClient, oam: str, supi: str, plan: str | None
                     ) -> None:
    body: dict[str, Any] = {"supi": supi, "brand": "testco", "homeNetwork": "northwind"}
    if plan:
        body["planOfferId"] = plan
    r = await client.post(oam + PROV + "/subscribers", headers=ADMIN, json=body)
    assert r.status_code == 201, r.text


async def _buy(client: httpx.AsyncClient, oam: str, supi: str, offer: str) -> None:
    r = await client.post(f"{oam}{PROV}/subscribers/{supi}/purchases", headers=ADMIN,
                          json={"offerId": offer})
    assert r.status_code == 201, r.text


async def _stored(db: Db, *records: tuple[str, str, str], timeout_s: float = 10.0
                  ) -> None:
    """Wait until the EDRs ``(supi, kind, event)`` are stored. EDRs reach the database a
    moment after the exchange; the clock must not jump hours ahead of them (records are
    stored within the fraud reader's late window, here of the fake clock)."""
    deadline = time.monotonic() + timeout_s
    for supi, kind, event in records:
        while not await db["edrs"].find_one({"supi": supi, "kind": kind, "event": event}):
            assert time.monotonic() < deadline, f"no {kind} {event} EDR of {supi}"
            await asyncio.sleep(0.02)


async def _fraud_detections(db: Db, supis: list[str], timeout_s: float = 10.0
                            ) -> set[tuple[str, str]]:
    """Once the fraud reader has read every record of the day: (SUPI, rule) of each
    detection; no case is open for any of ``supis``."""
    last = await db["edrs"].find_one({}, sort=[("time", -1), ("_id", -1)])
    assert last is not None
    deadline = time.monotonic() + timeout_s
    while True:
        cur = await db["fraud_cursor"].find_one({"_id": "edrs"}) or {}
        if cur.get("hi_t") is not None and (cur["hi_t"], str(cur.get("hi_id"))) >= (
                last["time"], str(last["_id"])):
            break
        assert time.monotonic() < deadline, "the fraud reader did not catch up"
        await asyncio.sleep(0.05)
    q = {"supi": {"$in": supis}}
    assert await db["fraud_cases"].find(q).to_list(None) == []
    return {(d["supi"], d["rule"]) for d in await db["edrs"].find(
        {**q, "kind": "fraud", "event": "detected"}).to_list(None)}


def _check(chg: SmfSim, pol: PolicySim) -> None:
    for r in pol.responses:
        c.validate_exchange(c.PCF, r)
    root = "/nchf-convergedcharging/v3"
    for ex in chg.exchanges:
        c.validate_request(c.CHF, ex.method, ex.path, ex.request)
        assert ex.path.startswith(root)


async def test_a_day_of_an_unlimited_then_throttled_subscriber(
        nf_urls: tuple[str, str], client: httpx.AsyncClient, clock: FakeClock, db: Db) -> None:
    sbi, oam = nf_urls
    supi = "imsi-001010000000301"
    await _provision(client, oam, supi, "t-unlimited")
    with NotificationReceiver() as smf:
        clock.advance(7 * HOUR)  # 07:00 the phone attaches
        pol = PolicySim(client, sbi, supi, smf.url("/smf/pol-1"))
        r = await pol.create()
        assert r.status_code == 201 and session_ambr(r.json())["downlink"] == "10 Mbps"
        chg = SmfSim(httpx_transport(client, sbi), supi, notify_uri=smf.url("/smf/chg-1"))
        assert (await chg.create(requested=2 * MIB)).status == 201
        await _stored(db, (supi, "policy", "created"), (supi, "charging", "create"))

        clock.advance(5 * HOUR)  # by noon the 10 MiB are used up
        throttle = await _use_until_throttled(chg, smf, "/smf/pol-1/update")
        assert _ambr_of(throttle) == {"uplink": "64 Kbps", "downlink": "128 Kbps"}
        smf.clear()

        clock.advance(3 * HOUR)  # 15:00 an add-on through the provisioning API
        await _buy(client, oam, supi, "t-addon-2")
        restore = await smf.wait_for(lambda r: r.path == "/smf/pol-1/update")
        assert _ambr_of(restore) == {"uplink": "2 Mbps", "downlink": "10 Mbps"}
        smf.clear()

        clock.advance(4 * HOUR)  # 19:00 a roaming pass, and the UE crosses the border
        await _buy(client, oam, supi, "t-roam-north")
        r = await pol.move_to(h.NORTH_ZONE_PLMN)
        assert r.status_code == 200 and session_ambr(r.json())["downlink"] == "10 Mbps"
        chg.serving_plmn = h.NORTH_ZONE_PLMN
        ex = await chg.update(Usage(100_000, 200_000), requested=MIB)
        assert ex.status == 200

        # 20:00 the session ends: within twice the validity time of the last report, so
        # the SMF's release, not the supervision sweep, closes it.
        clock.advance(1 * HOUR)
        assert (await chg.release(Usage(1000, 2000))).status == 204
        r = await pol.delete()
        assert r.status_code == 204
        assert (await pol.get()).status_code == 404
        _check(chg, pol)
    events = [e["event"] for e in await db["edrs"].find(
        {"supi": supi, "kind": "policy"}).sort("time").to_list(None)]
    assert events == ["created", "throttled", "restored", "released"]
    # The crossing is no case: one PDU session in one place at a time. (The charging
    # session is silent from noon to 19:00, long enough to be forgotten as stale; if the
    # orphan rule looked meanwhile it recorded the policy association alone.)
    assert await _fraud_detections(db, [supi]) <= {(supi, "orphan_session")}


async def test_a_family_pool_running_dry_throttles_every_member(
        nf_urls: tuple[str, str], client: httpx.AsyncClient, clock: FakeClock, db: Db) -> None:
    sbi, oam = nf_urls
    owner, kids = "imsi-001010000000310", ["imsi-001010000000311", "imsi-001010000000312"]
    for s in (owner, *kids):
        await _provision(client, oam, s, None)
    r = await client.post(oam + PROV + "/groups", headers=ADMIN,
                          json={"ownerSupi": owner, "offerId": "t-family"})
    assert r.status_code == 201, r.text
    gid = r.json()["groupId"]
    # The owner joins with the plan's member cap (8 MiB), the kids with 12 MiB each.
    for s in kids:
        r = await client.post(f"{oam}{PROV}/groups/{gid}/members", headers=ADMIN,
                              json={"supi": s, "capMb": 12})
        assert r.status_code in (200, 201), r.text
    with NotificationReceiver() as smf:
        clock.advance(8 * HOUR)
        pols = [PolicySim(client, sbi, s, smf.url(f"/smf/{i}")) for i, s in
                enumerate((owner, *kids))]
        for p in pols:
            assert (await p.create()).status_code == 201
        # The owner reaches their own 8 MiB member cap: only their session slows.
        owner_chg = SmfSim(httpx_transport(client, sbi), owner, notify_uri=smf.url("/chg/0"))
        assert (await owner_chg.create(requested=2 * MIB)).status == 201
        await _stored(db, (owner, "charging", "create"),
                      *((s, "policy", "created") for s in (owner, *kids)))
        mine = await _use_until_throttled(owner_chg, smf, "/smf/0/update")
        assert _ambr_of(mine)["downlink"] == "128 Kbps"
        assert smf.matching(lambda r: r.path in ("/smf/1/update", "/smf/2/update")) == []
        # The first kid takes the pool's other 12 MiB: the pool is dry, every member slows,
        # including the second kid who used nothing.
        clock.advance(2 * HOUR)
        kid_chg = SmfSim(httpx_transport(client, sbi), kids[0], notify_uri=smf.url("/chg/1"))
        assert (await kid_chg.create(requested=2 * MIB)).status == 201
        await _use_until_throttled(kid_chg, smf, "/smf/2/update")
        got = await smf.wait_for_all(lambda r: r.path.endswith("/update"), count=3)
        assert sorted(r.path for r in got) == ["/smf/0/update", "/smf/1/update",
                                               "/smf/2/update"]
        assert all(_ambr_of(r)["downlink"] == "128 Kbps" for r in got)
        clock.advance(HOUR)
        # A family add-on bought by the owner: the owner is back to full speed.
        smf.clear()
        await _buy(client, oam, owner, "t-addon-2")
        back = await smf.wait_for(lambda r: r.path == "/smf/0/update")
        assert _ambr_of(back)["downlink"] == "10 Mbps"
        for p in pols:
            for resp in p.responses:
                c.validate_exchange(c.PCF, resp)
    throttled = await db["edrs"].count_documents({"kind": "policy", "event": "throttled"})
    assert throttled == 3
    # The second kid's policy association never had a charging session, the first kid's
    # had none for two hours: orphans (the rule records them; the first kid's is seen if
    # the rule looked during those two hours). Nothing else fires.
    got = await _fraud_detections(db, [owner, *kids])
    assert {(kids[1], "orphan_session")} <= got <= {(k, "orphan_session") for k in kids}
