"""Nchf_SpendingLimitControl through the app: subscribe, modify, unsubscribe, and status
notifications at a real HTTP/2 PCF fed by the same counter changes as the built-in PCF."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from nf.errors import StoreUnavailable
from tests import conformance as c
from tests.ledger import helpers as h
from tests.pcf.harness import PCF_ROOT, SLC_ROOT, Nf, context
from tests.peers import NotificationReceiver, Reply

SUPI = "imsi-001010000000201"


async def test_subscribe_modify_unsubscribe(nf: Nf) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    body = {"supi": SUPI, "policyCounterIds": ["data-cap"],
            "notifUri": "http://127.0.0.1:9/pcf/n1", "notifId": "n1"}
    status, st, headers = await nf.call("POST", f"{SLC_ROOT}/subscriptions", body,
                                        spec=c.SLC)
    assert status == 201
    assert headers["location"].rsplit("/", 2)[-2] == "subscriptions"
    sid = headers["location"].rsplit("/", 1)[-1]
    assert st == {"supi": SUPI, "notifId": "n1", "statusInfos": {
        "data-cap": {"policyCounterId": "data-cap", "currentStatus": "normal"}}}
    expiry = (nf.clock.now() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    status, st, _ = await nf.call("PUT", f"{SLC_ROOT}/subscriptions/{sid}",
                                  {"supi": SUPI, "policyCounterIds": ["data-cap", "roaming"],
                                   "expiry": expiry}, spec=c.SLC)
    assert status == 200 and set(st["statusInfos"]) == {"data-cap", "roaming"}
    assert st["statusInfos"]["roaming"]["currentStatus"] == "none"
    assert st["expiry"] == expiry
    status, _b, _h = await nf.call("DELETE", f"{SLC_ROOT}/subscriptions/{sid}", spec=c.SLC)
    assert status == 204
    status, p, _ = await nf.call("DELETE", f"{SLC_ROOT}/subscriptions/{sid}", spec=c.SLC)
    assert status == 404 and p["cause"] == "SUBSCRIPTION_NOT_FOUND"
    status, p, _ = await nf.call("PUT", f"{SLC_ROOT}/subscriptions/{sid}", {"supi": SUPI},
                                 spec=c.SLC)
    assert status == 404


async def test_subscribe_errors(nf: Nf) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    uri = "http://127.0.0.1:9/pcf"
    status, p, _ = await nf.call("POST", f"{SLC_ROOT}/subscriptions",
                                 {"supi": "imsi-001019999999998", "notifUri": uri},
                                 spec=c.SLC)
    assert status == 400 and p["cause"] == "USER_UNKNOWN"
    r = await nf.client.post(f"{SLC_ROOT}/subscriptions",
                             json={"supi": SUPI, "notifUri": uri,
                                   "policyCounterIds": ["data-cap", "voice-minutes"]})
    p = await r.get_json()
    assert r.status_code == 400 and p["cause"] == "UNKNOWN_POLICY_COUNTERS"
    assert "voice-minutes" in p["detail"]
    status, p, _ = await nf.call("POST", f"{SLC_ROOT}/subscriptions", {"supi": SUPI},
                                 spec=c.SLC)
    assert status == 400 and p["cause"] == "MANDATORY_IE_MISSING"
    assert await nf.db["slc_subscriptions"].count_documents({}) == 0


async def test_counter_changes_notify_the_subscribed_pcf_and_the_built_in_one(nf: Nf) -> None:
    now = nf.clock.now()
    await h.unlimited(nf.ledger, now, SUPI)
    async with NotificationReceiver() as peers:
        peers.respond("/gone", Reply(404))
        for path, ids in (("/pcf-a/s", ["data-cap"]), ("/pcf-b/s", ["roaming"]),
                          ("/gone/s", ["data-cap"])):
            status, _st, _h = await nf.call(
                "POST", f"{SLC_ROOT}/subscriptions",
                {"supi": SUPI, "policyCounterIds": ids, "notifUri": peers.url(path)},
                spec=c.SLC)
            assert status == 201
        await nf.call("POST", f"{PCF_ROOT}/sm-policies",
                      context(SUPI, peers.url("/smf/p")))
        await nf.cross_cap(SUPI)
        got = await peers.wait_for(lambda r: r.path == "/pcf-a/s/notify")
        c.validate_schema(c.SLC, "SpendingLimitStatus", got.json)
        assert got.http_version == "2"
        assert got.json["statusInfos"] == {
            "data-cap": {"policyCounterId": "data-cap", "currentStatus": "exhausted"}}
        await peers.wait_for(lambda r: r.path == "/smf/p/update")  # same change, both
        # A PCF that forgot its subscription answers 404: it is dropped here too.
        await peers.wait_for(lambda r: r.path == "/gone/s/notify")
        for _ in range(100):
            if await nf.db["slc_subscriptions"].count_documents({}) == 2:
                break
            await asyncio.sleep(0.02)
        assert await nf.db["slc_subscriptions"].count_documents({}) == 2
        # The roaming subscriber hears only of the roaming counter.
        await nf.publish(await nf.ledger.purchase(SUPI, h.DEMO_ROAMING_PASS, nf.clock.now()))
        roam = await peers.wait_for(lambda r: r.path == "/pcf-b/s/notify")
        assert roam.json["statusInfos"]["roaming"]["currentStatus"] == "available"
        await asyncio.sleep(0.2)
        assert len(peers.matching(lambda r: r.path == "/pcf-b/s/notify")) == 1
        assert len(peers.matching(lambda r: r.path == "/pcf-a/s/notify")) == 1


async def test_a_failed_notification_round_is_retried(nf: Nf,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    async with NotificationReceiver() as pcf:
        status, _st, _h = await nf.call(
            "POST", f"{SLC_ROOT}/subscriptions",
            {"supi": SUPI, "policyCounterIds": ["data-cap"], "notifUri": pcf.url("/p")},
            spec=c.SLC)
        assert status == 201
        svc = nf.slc.service
        real = svc.notify

        async def down(supis: list[str]) -> None:
            raise StoreUnavailable("database unreachable during reading subscriptions")

        monkeypatch.setattr(svc, "notify", down)
        await nf.cross_cap(SUPI, publish=False)  # the charge is committed regardless
        await nf.delivery_failed()  # the change stays pending in the wallet
        monkeypatch.setattr(svc, "notify", real)
        assert await nf.sweep_effects() == 1
        got = await pcf.wait_for(lambda r: r.path == "/p/notify")
        assert got.json["statusInfos"]["data-cap"]["currentStatus"] == "exhausted"
