"""Npcf_SMPolicyControl through the app: operations, errors, real-time pushes to a real
HTTP/2 SMF, the outbox's gone-handler, EDRs. Everything validated against TS 29.512."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from nf.errors import Congestion, StoreUnavailable
from nf.ledger.port import SubscriberStatus
from nf.pcf.store import StoredPolicy
from tests import conformance as c
from tests.ledger import helpers as h
from tests.pcf.harness import PCF_ROOT, Nf, context
from tests.peers import NotificationReceiver, Received, Reply

SUPI = "imsi-001010000000101"


def _ambr(decision: dict[str, object]) -> dict[str, str]:
    rules = decision["sessRules"]
    assert isinstance(rules, dict) and len(rules) == 1
    return dict(next(iter(rules.values()))["authSessAmbr"])


def _update(r: Received) -> dict[str, str]:
    assert r.method == "POST" and r.http_version == "2"
    c.validate_schema(c.PCF, "SmPolicyNotification", r.json)
    return _ambr(r.json["smPolicyDecision"])


async def _create(nf: Nf, supi: str, uri: str, plmn: str = h.HOME_PLMN,
                  pdu: int = 1) -> tuple[str, dict[str, object]]:
    status, body, headers = await nf.call("POST", f"{PCF_ROOT}/sm-policies",
                                          context(supi, uri, plmn, pdu))
    assert status == 201, body
    return headers["location"].rsplit("/", 1)[-1], body


async def _edrs(nf: Nf, supi: str) -> list[dict[str, object]]:
    await asyncio.sleep(0.1)  # group commit
    return await nf.db["edrs"].find({"supi": supi, "kind": "policy"}).to_list(
        None)


async def test_create_get_update_delete(nf: Nf) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    status, body, headers = await nf.call(
        "POST", f"{PCF_ROOT}/sm-policies", context(SUPI, "http://127.0.0.1:9/smf/p1"))
    assert status == 201
    location = headers["location"]
    assert location.startswith("http://") and f"{PCF_ROOT}/sm-policies/" in location
    assert _ambr(body) == {"uplink": "4 Mbps", "downlink": "20 Mbps"}
    assert {"PLMN_CH", "SE_AMBR_CH"} <= set(body["policyCtrlReqTriggers"])
    assert body["qosDecs"] and body["pccRules"]
    rule = next(iter(body["sessRules"].values()))
    assert rule["authDefQos"]["5qi"] == nf.rt.settings.pcf.default_5qi
    pid = location.rsplit("/", 1)[-1]

    status, got, _ = await nf.call("GET", f"{PCF_ROOT}/sm-policies/{pid}")
    assert status == 200 and got["context"]["supi"] == SUPI
    assert got["context"]["ratType"] == "NR"  # kept as received
    assert _ambr(got["policy"]) == _ambr(body)

    status, upd, _ = await nf.call(
        "POST", f"{PCF_ROOT}/sm-policies/{pid}/update",
        {"repPolicyCtrlReqTriggers": ["SE_AMBR_CH"],
         "subsSessAmbr": {"uplink": "1 Gbps", "downlink": "1 Gbps"}})
    assert status == 200 and _ambr(upd) == _ambr(body)

    status, _b, _h = await nf.call("POST", f"{PCF_ROOT}/sm-policies/{pid}/delete", {})
    assert status == 204
    status, problem, _ = await nf.call("GET", f"{PCF_ROOT}/sm-policies/{pid}")
    assert status == 404 and problem["cause"] == "CONTEXT_NOT_FOUND"
    kinds = [e["event"] for e in await _edrs(nf, SUPI)]
    assert kinds == ["created", "released"]


async def test_supported_features_are_answered(nf: Nf) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    ctx = {**context(SUPI, "http://127.0.0.1:9/smf/p1"), "suppFeat": "3f"}
    status, body, _ = await nf.call("POST", f"{PCF_ROOT}/sm-policies", ctx)
    assert status == 201 and body["suppFeat"] == "0"


async def test_a_repeated_create_keeps_one_association(nf: Nf) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    first, _ = await _create(nf, SUPI, "http://127.0.0.1:9/smf/p1")
    again, _ = await _create(nf, SUPI, "http://127.0.0.1:9/smf/p1")
    assert first == again
    assert await nf.db["sm_policies"].count_documents({"supi": SUPI}) == 1


async def test_errors_are_3gpp_problem_details(nf: Nf) -> None:
    now = nf.clock.now()
    status, p, _ = await nf.call("POST", f"{PCF_ROOT}/sm-policies",
                                 context("imsi-001019999999999", "http://127.0.0.1:9/x"))
    assert status == 400 and p["cause"] == "USER_UNKNOWN"
    await h.unlimited(nf.ledger, now, SUPI)
    bad = context(SUPI, "http://127.0.0.1:9/x")
    del bad["sliceInfo"]
    r = await nf.client.post(f"{PCF_ROOT}/sm-policies", json=bad)
    p = await r.get_json()
    assert r.status_code == 400 and p["cause"] == "MANDATORY_IE_MISSING"
    assert r.headers["content-type"] == "application/problem+json"
    assert any(ip["param"] == "/sliceInfo" for ip in p["invalidParams"])
    c.validate_response(c.PCF, "POST", f"{PCF_ROOT}/sm-policies", 400, p,
                        content_type="application/problem+json")
    status, p, _ = await nf.call("POST", f"{PCF_ROOT}/sm-policies/nope/update",
                                 {"repPolicyCtrlReqTriggers": ["PLMN_CH"]})
    assert status == 404 and p["cause"] == "CONTEXT_NOT_FOUND"
    status, p, _ = await nf.call("POST", f"{PCF_ROOT}/sm-policies/nope/delete", {})
    assert status == 404
    # Roaming with no pass on a plan that does not roam without one: refused.
    status, p, _ = await nf.call("POST", f"{PCF_ROOT}/sm-policies",
                                 context(SUPI, "http://127.0.0.1:9/x", h.NORTH_ZONE_PLMN))
    assert status == 403 and p["cause"] == "POLICY_CONTEXT_DENIED"
    await nf.ledger.set_status(SUPI, SubscriberStatus.SUSPENDED, now)
    status, p, _ = await nf.call("POST", f"{PCF_ROOT}/sm-policies",
                                 context(SUPI, "http://127.0.0.1:9/x"))
    assert status == 403 and p["cause"] == "POLICY_CONTEXT_DENIED"
    assert await nf.db["sm_policies"].count_documents({}) == 0


async def test_cap_crossing_throttles_every_session_then_addon_restores(nf: Nf) -> None:
    now = nf.clock.now()
    await h.unlimited(nf.ledger, now, SUPI)
    await h.with_roaming_pass(nf.ledger, now, SUPI)
    async with NotificationReceiver() as smf:
        # Two sessions at home and one roaming in the pass zone, three SMFs.
        p1, _ = await _create(nf, SUPI, smf.url("/a/p1"))
        p2, _ = await _create(nf, SUPI, smf.url("/b/p2"), pdu=2)
        p3, d3 = await _create(nf, SUPI, smf.url("/c/p3"), h.NORTH_ZONE_PLMN, pdu=3)
        assert _ambr(d3)["downlink"] == "20 Mbps"
        await nf.cross_cap(SUPI)
        got = await smf.wait_for_all(lambda r: r.path.endswith("/update"), count=3)
        assert {r.path for r in got} == {"/a/p1/update", "/b/p2/update", "/c/p3/update"}
        ids = {"/a/p1/update": p1, "/b/p2/update": p2, "/c/p3/update": p3}
        for r in got:
            assert _update(r) == {"uplink": "64 Kbps", "downlink": "128 Kbps"}
            assert r.json["resourceUri"].endswith("/sm-policies/" + ids[r.path])
        smf.clear()
        changes = await nf.ledger.purchase(SUPI, h.DEMO_ADDON, nf.clock.now())
        await nf.publish(changes)
        got = await smf.wait_for_all(lambda r: r.path.endswith("/update"), count=3)
        assert all(_update(r)["downlink"] == "20 Mbps" for r in got)
        _status, pol, _ = await nf.call("GET", f"{PCF_ROOT}/sm-policies/{p1}")
        assert _ambr(pol["policy"])["downlink"] == "20 Mbps"
        assert pol["policy"]["pccRules"]  # the held decision keeps the initial rules
    events = [(e["event"], e["speed_before"], e["speed_after"]) for e in await _edrs(nf, SUPI)]
    throttled = [e for e in events if e[0] == "throttled"]
    restored = [e for e in events if e[0] == "restored"]
    assert len(throttled) == 3 and len(restored) == 3
    assert throttled[0][1] == {"uplink_kbps": 4000, "downlink_kbps": 20000}
    assert throttled[0][2] == {"uplink_kbps": 64, "downlink_kbps": 128}
    assert p2 != p3


async def test_block_terminates_and_a_404_from_the_smf_ends_the_policy(nf: Nf) -> None:
    now = nf.clock.now()
    other = "imsi-001010000000102"
    await h.unlimited(nf.ledger, now, SUPI)
    await h.unlimited(nf.ledger, now, other)
    async with NotificationReceiver() as smf:
        smf.respond("/gone/", Reply(404))
        p1, _ = await _create(nf, SUPI, smf.url("/live/p1"))
        p2, _ = await _create(nf, other, smf.url("/gone/p2"))
        await nf.publish(await nf.ledger.set_status(SUPI, SubscriberStatus.BLOCKED, now))
        term = await smf.wait_for(lambda r: r.path == "/live/p1/terminate")
        c.validate_schema(c.PCF, "TerminationNotification", term.json)
        assert term.json["cause"] == "UE_SUBSCRIPTION"
        # A tombstone until the SMF's delete (its answer to the terminate) arrives.
        tomb = await nf.db["sm_policies"].find_one({"_id": p1})
        assert tomb is not None and tomb["ended"] == "terminated"
        status, problem, _ = await nf.call("GET", f"{PCF_ROOT}/sm-policies/{p1}")
        assert status == 404 and problem["cause"] == "CONTEXT_NOT_FOUND"
        status, _b, _h = await nf.call("POST", f"{PCF_ROOT}/sm-policies/{p1}/delete", {})
        assert status == 204
        assert await nf.db["sm_policies"].count_documents({"_id": p1}) == 0
        await nf.cross_cap(other)
        await smf.wait_for(lambda r: r.path == "/gone/p2/update")
        for _ in range(100):
            if await nf.db["sm_policies"].count_documents({"_id": p2}) == 0:
                break
            await asyncio.sleep(0.02)
        assert await nf.db["sm_policies"].count_documents({"_id": p2}) == 0
    assert [e["event"] for e in await _edrs(nf, SUPI)] == ["created", "terminated"]
    assert [e["event"] for e in await _edrs(nf, other)] == ["created", "throttled",
                                                            "terminated"]


async def test_concurrent_reevaluations_never_leave_a_stale_speed(nf: Nf) -> None:
    now = nf.clock.now()
    await h.unlimited(nf.ledger, now, SUPI)
    async with NotificationReceiver() as smf:
        pid, _ = await _create(nf, SUPI, smf.url("/s/p"))
        await nf.cross_cap(SUPI)
        await smf.wait_for(lambda r: r.path.endswith("/update"))
        # An old "full speed" change arriving late, many times at once, with the latest
        # news: whatever the interleaving, the policy ends on the ledger's current speed.
        stale = await nf.ledger.purchase(SUPI, h.DEMO_BOOST, now)
        restore = await nf.ledger.purchase(SUPI, h.DEMO_ADDON, now)
        await asyncio.gather(*(nf.publish(stale + restore) for _ in range(8)))
        doc = await nf.db["sm_policies"].find_one({"_id": pid})
        view = await nf.ledger.subscriber(SUPI, now)
        assert view is not None and doc is not None
        assert doc["speed"] == {"ul": view.speed.speed.uplink_kbps,
                                "dl": view.speed.speed.downlink_kbps}
        await asyncio.sleep(0.3)
        last = smf.matching(lambda r: r.path.endswith("/update"))[-1]
        assert _update(last)["downlink"] == "80 Mbps"  # the boost is the current speed
        versions = doc["version"]
        assert versions >= 3


async def test_boost_end_is_pushed_by_the_revalidation_sweep(nf: Nf) -> None:
    now = nf.clock.now()
    await h.unlimited(nf.ledger, now, SUPI)
    async with NotificationReceiver() as smf:
        await _create(nf, SUPI, smf.url("/s/p"))
        await nf.publish(await nf.ledger.purchase(SUPI, h.DEMO_BOOST, now))
        boost = await smf.wait_for(lambda r: r.path.endswith("/update"))
        decision = boost.json["smPolicyDecision"]
        assert _update(boost)["downlink"] == "80 Mbps"
        assert "RE_TIMEOUT" in decision["policyCtrlReqTriggers"]
        assert decision["revalidationTime"].endswith("Z")
        smf.clear()
        nf.clock.advance(3601)
        assert await nf.pcf.service.revalidate_due() == 1
        end = await smf.wait_for(lambda r: r.path.endswith("/update"))
        assert _update(end)["downlink"] == "20 Mbps"
        assert "revalidationTime" not in end.json["smPolicyDecision"]
        assert await nf.pcf.service.revalidate_due() == 0


async def test_moving_into_a_pass_zone_and_out_of_it(nf: Nf) -> None:
    now = nf.clock.now()
    await h.unlimited(nf.ledger, now, SUPI)
    pid, _ = await _create(nf, SUPI, "http://127.0.0.1:9/smf/p")
    path = f"{PCF_ROOT}/sm-policies/{pid}/update"
    plmn = {"mcc": h.NORTH_ZONE_PLMN[:3], "mnc": h.NORTH_ZONE_PLMN[3:]}
    await h.with_roaming_pass(nf.ledger, now, SUPI)
    status, d, _ = await nf.call("POST", path, {"repPolicyCtrlReqTriggers": ["PLMN_CH"],
                                               "servingNetwork": plmn})
    assert status == 200 and _ambr(d)["downlink"] == "20 Mbps"
    doc = await nf.db["sm_policies"].find_one({"_id": pid})
    assert doc is not None and doc["roaming"] is True and doc["servingPlmn"] == "99970"
    # The south zone is not covered: the SMF is asked to release the session.
    status, d, _ = await nf.call("POST", path, {"repPolicyCtrlReqTriggers": ["PLMN_CH"],
                                               "servingNetwork": {"mcc": "999",
                                                                  "mnc": "71"}})
    assert status == 200 and d == {"relCause": "UE_SUBSCRIPTION"}
    assert await nf.db["sm_policies"].count_documents({"_id": pid}) == 0
    nf.clock.advance(timedelta(days=2).total_seconds())


async def test_a_push_overtaken_in_the_outbox_is_followed_by_the_newest(nf: Nf) -> None:
    """Another process committed decision v3 and enqueued it before this one enqueued v2:
    the outbox holds v2 last. Converging notices and sends the stored v3 again."""
    now = nf.clock.now()
    await h.unlimited(nf.ledger, now, SUPI)
    async with NotificationReceiver() as smf:
        pid, _ = await _create(nf, SUPI, smf.url("/s/p"))
        await nf.cross_cap(SUPI)  # v2: throttled, pushed
        await smf.wait_for(lambda r: r.path.endswith("/update"))
        newest = {"sessRules": {"sess-1": {"sessRuleId": "sess-1", "authSessAmbr": {
            "uplink": "4 Mbps", "downlink": "20 Mbps"}}}, "policyCtrlReqTriggers": ["PLMN_CH"]}
        await nf.db["sm_policies"].update_one({"_id": pid}, {"$set": {
            "version": 3, "decision": newest}})
        sent = await nf.pcf.service._converge({pid: 2})
        assert len(sent) == 1
        got = await smf.wait_for_all(lambda r: r.path.endswith("/update"), count=2)
        assert _update(got[-1])["downlink"] == "20 Mbps"
        assert await nf.pcf.service._converge({pid: 3}) == []


async def test_a_cap_crossed_while_the_policy_is_being_created_is_not_missed(
        nf: Nf, monkeypatch: pytest.MonkeyPatch) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    store = nf.pcf.store
    insert = store.insert

    async def crossing_first(p: StoredPolicy, now: datetime) -> None:
        # The CHF crosses the cap after the PCF read the ledger, before the policy is
        # stored: the counter change finds no policy to push to.
        await nf.cross_cap(SUPI)
        await insert(p, now)

    monkeypatch.setattr(store, "insert", crossing_first)
    status, body, _ = await nf.call("POST", f"{PCF_ROOT}/sm-policies",
                                    context(SUPI, "http://127.0.0.1:9/smf/p"))
    assert status == 201
    assert _ambr(body) == {"uplink": "64 Kbps", "downlink": "128 Kbps"}
    assert body["pccRules"] and body["qosDecs"]  # still a complete initial decision
    doc = await nf.db["sm_policies"].find_one({"supi": SUPI})
    first = int(nf.clock.now().timestamp() * 1000)  # a create's first version
    assert doc is not None and doc["speed"] == {"ul": 64, "dl": 128}
    assert doc["version"] == first + 1
    assert [e["event"] for e in await _edrs(nf, SUPI)] == ["created", "throttled"]


async def test_a_roaming_pass_used_up_ends_the_roaming_session_only(nf: Nf) -> None:
    now = nf.clock.now()
    await h.unlimited(nf.ledger, now, SUPI)
    await h.with_roaming_pass(nf.ledger, now, SUPI)
    async with NotificationReceiver() as smf:
        home, _ = await _create(nf, SUPI, smf.url("/home/p"))
        away, _ = await _create(nf, SUPI, smf.url("/away/p"), h.NORTH_ZONE_PLMN, pdu=2)
        grant = await nf.ledger.charge(h.step(SUPI, now, requested=1024**3, session="r",
                                              plmn=h.NORTH_ZONE_PLMN, seq=1))
        await nf.publish(grant.counter_changes)
        used = await nf.ledger.charge(h.step(SUPI, now, used=grant.granted_bytes,
                                             session="r", plmn=h.NORTH_ZONE_PLMN, seq=2))
        await nf.publish(used.counter_changes)
        term = await smf.wait_for(lambda r: r.path == "/away/p/terminate")
        c.validate_schema(c.PCF, "TerminationNotification", term.json)
        await asyncio.sleep(0.2)
        assert smf.matching(lambda r: r.path.startswith("/home/")) == []
        assert await nf.db["sm_policies"].count_documents({"_id": home, "ended": {
            "$exists": False}}) == 1
        assert (await nf.db["sm_policies"].find_one({"_id": away}) or {})["ended"] \
            == "terminated"


async def test_a_failed_reevaluation_is_retried_not_lost(
        nf: Nf, monkeypatch: pytest.MonkeyPatch) -> None:
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    async with NotificationReceiver() as smf:
        await _create(nf, SUPI, smf.url("/s/p"))
        store = nf.pcf.store
        real = store.for_subscribers

        async def down(supis: list[str]) -> list[StoredPolicy]:
            raise StoreUnavailable("database unreachable during reading SM policies")

        monkeypatch.setattr(store, "for_subscribers", down)
        await nf.cross_cap(SUPI, publish=False)  # the charge is committed regardless
        await nf.delivery_failed()  # the change stays pending in the wallet
        monkeypatch.setattr(store, "for_subscribers", real)
        assert smf.matching(lambda r: r.path.endswith("/update")) == []
        assert await nf.sweep_effects() == 1
        got = await smf.wait_for(lambda r: r.path.endswith("/update"))
        assert _update(got)["downlink"] == "128 Kbps"
        assert await nf.sweep_effects() == 0


async def test_a_decision_stored_but_never_enqueued_is_sent_later(
        nf: Nf, monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox refused the push after the new decision was stored (the same as a crash
    between the two writes): the policy stays marked as owed and is sent later."""
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    async with NotificationReceiver() as smf:
        pid, _ = await _create(nf, SUPI, smf.url("/s/p"))
        real = nf.outbox.enqueue

        async def full(items: object) -> None:
            raise Congestion("the outbox is full")

        monkeypatch.setattr(nf.pcf.service._outbox, "enqueue", full)
        await nf.cross_cap(SUPI, publish=False)
        await nf.delivery_failed()
        monkeypatch.setattr(nf.pcf.service._outbox, "enqueue", real)
        doc = await nf.db["sm_policies"].find_one({"_id": pid})
        assert doc is not None and doc["pushOwed"] is True and doc["speed"]["dl"] == 128
        assert await nf.pcf.service.resend_owed() == 0  # not yet: it may still be on its way
        nf.clock.advance(10)
        assert await nf.pcf.service.resend_owed() == 1
        got = await smf.wait_for(lambda r: r.path.endswith("/update"))
        assert _update(got)["downlink"] == "128 Kbps"
        doc = await nf.db["sm_policies"].find_one({"_id": pid})
        assert doc is not None and "pushOwed" not in doc
        assert await nf.pcf.service.resend_owed() == 0
