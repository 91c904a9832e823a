"""The CHF through the app (Quart test client, real database, fake clock). Every request
and answer is validated against the 3GPP document and ``openapi/chf.yaml``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from nf.chf.core import StepKey
from nf.clock import FakeClock
from nf.config import Settings
from nf.ledger.port import CapState, CounterChange, SubscriberStatus
from nf.store.mongo import Db
from tests import conformance as c
from tests.chf.harness import CHF_ROOT, MIB, Nf, build, settled, with_grant
from tests.ledger import helpers as h
from tests.peers import NotificationReceiver, Reply
from tests.smf_sim import SmfSim, Usage, unit_info

SUPI = "imsi-001010000000101"


class Recorder:
    """A counter listener that remembers what the CHF published."""

    def __init__(self) -> None:
        self.changes: list[CounterChange] = []

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        self.changes.extend(changes)


async def edrs(nf: Nf, ref: str) -> list[dict[str, Any]]:
    """The session's EDRs in request order; closes without a request come last (once the
    pending ones are stored)."""
    await settled(nf.db)
    docs = [d async for d in nf.db["edrs"].find({"charging_data_ref": ref})]
    isn = "invocation_sequence_number"
    return sorted(docs, key=lambda d: (d[isn] is None, d[isn] or 0))


async def used_and_reserved(nf: Nf, supi: str) -> tuple[int, int]:
    bal = await nf.ledger.balance(supi, nf.clock.now())
    assert bal is not None
    return (sum(b.used_bytes for b in bal.buckets), sum(b.reserved_bytes for b in bal.buckets))


async def test_capped_plan_is_granted_until_the_balance_is_gone_then_refused(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """Issue 4 "done when": a demo subscriber on a capped plan (pebble, 1 GiB, blocks at
    the cap) is granted until the balance is gone, then refused with QUOTA_LIMIT_REACHED
    and a final-unit indication; a retransmitted update changes nothing; the EDRs' count
    and totals match the usage reported."""
    async for nf in build(with_grant(settings, 200 * MIB), db, clock):
        await h.capped(nf.ledger, clock.now(), SUPI, brand="pebble", plan="pebble-capped-1gb")
        recorder = Recorder()
        nf.rt.counter_listeners.append(recorder)
        smf = nf.smf(SUPI)
        first = await smf.create()
        assert first.status == 201
        assert first.headers["location"].endswith(f"{CHF_ROOT}/chargingdata/{smf.ref}")
        u = unit_info(first.response, 10)
        assert u["resultCode"] == "SUCCESS" and u["grantedUnit"]["totalVolume"] == 200 * MIB
        assert u["validityTime"] == 3600 and u["volumeQuotaThreshold"] == 40 * MIB
        assert u["quotaHoldingTime"] == 300
        granted = [smf.granted]
        reported = 0
        retransmitted = False
        while True:
            # The SMF uses the whole grant (reporting at the threshold) and asks for more.
            use = Usage(smf.granted // 4, smf.granted - smf.granted // 4, "QUOTA_THRESHOLD")
            ex = await smf.update(use)
            reported += use.total
            assert ex.status == 200
            info = unit_info(ex.response, 10)
            if not retransmitted:
                before = (await used_and_reserved(nf, SUPI), len(await edrs(nf, smf.ref)))
                again = await smf.retransmit()
                assert again.status == 200 and again.response == ex.response
                after = (await used_and_reserved(nf, SUPI), len(await edrs(nf, smf.ref)))
                assert after == before  # no second debit, no second record
                retransmitted = True
            if info["resultCode"] != "SUCCESS":
                break
            granted.append(info["grantedUnit"]["totalVolume"])
            if "finalUnitIndication" in info:
                # The last grant ends exactly at the cap and says so.
                assert sum(granted) == 1024 * MIB
                assert info["finalUnitIndication"]["finalUnitAction"] == "TERMINATE"
            assert len(granted) < 20
        assert info["resultCode"] == "QUOTA_LIMIT_REACHED"
        assert "grantedUnit" not in info
        assert info["finalUnitIndication"] == {"finalUnitAction": "TERMINATE"}
        assert sum(granted) == 1024 * MIB == reported
        # The cap crossing was published for the policy side.
        await settled(nf.db)
        assert any(ch.after.data_cap is CapState.EXHAUSTED for ch in recorder.changes)
        released = await smf.release(Usage(0, 0, "FINAL"))
        assert released.status == 204 and released.response is None
        used, reserved = await used_and_reserved(nf, SUPI)
        assert used == reported and reserved == 0
        records = await edrs(nf, smf.ref)
        assert len(records) == len(smf.exchanges) - 1  # every request but the retransmission
        assert [r["event"] for r in records][:2] == ["create", "update"]
        assert records[-1]["event"] == "release"
        assert sum(r["used_total"] for r in records) == reported
        assert sum(r["used_ul"] + r["used_dl"] for r in records) == reported
        assert sum(r["granted"] for r in records) == 1024 * MIB
        assert records[-2]["result"] == "QUOTA_LIMIT_REACHED"
        assert {r["brand"] for r in records} == {"pebble"}
        assert all(r["supi"] == SUPI and r["host_network"] == "northwind"
                   and r["serving_plmn"] == "00101" and r["roaming"] is False
                   for r in records)
        debited = sum(d["bytes"] for r in records for unit in r["units"]
                      for d in unit["debited"])
        assert debited == reported


async def test_redirect_to_the_brands_top_up_address(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)  # lumen: REDIRECT to its top-up page
    await nf.ledger.charge(h.step(SUPI, nf.clock.now(), requested=2048 * MIB, session="x",
                                  seq=1))
    await nf.ledger.charge(h.step(SUPI, nf.clock.now(), used=2048 * MIB, session="x",
                                  seq=2))
    ex = await nf.smf(SUPI).create()
    assert ex.status == 201
    info = unit_info(ex.response, 10)
    assert info["resultCode"] == "QUOTA_LIMIT_REACHED"
    assert info["finalUnitIndication"] == {
        "finalUnitAction": "REDIRECT",
        "redirectServer": {"redirectAddressType": "URL",
                           "redirectServerAddress": "https://lumen.example/top-up"}}


async def test_throttling_plan_keeps_granting_past_the_cap(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    s = settings.model_copy(update={"catalog_dir": h.TEST_CATALOG})
    async for nf in build(s, db, clock):
        await h.subscriber(nf.ledger, clock.now(), SUPI, "t-unlimited", brand="testco")
        smf = nf.smf(SUPI)
        await smf.create()  # 10 MiB: the whole full-speed allowance, ending at the cap
        assert smf.granted == 10 * MIB
        assert "finalUnitIndication" not in unit_info(smf.exchanges[-1].response, 10)
        ex = await smf.update(Usage(MIB, 9 * MIB))
        info = unit_info(ex.response, 10)
        assert info["resultCode"] == "SUCCESS" and info["grantedUnit"]["totalVolume"] > 0
        assert "finalUnitIndication" not in info
        records = await edrs(nf, smf.ref or "")
        assert records[-1]["units"][0]["throttled"] is True


async def test_unknown_subscriber_is_user_unknown(nf: Nf) -> None:
    ex = await nf.smf("imsi-001019999999999").create()
    assert ex.status == 404
    assert ex.headers["content-type"] == "application/problem+json"
    assert ex.response["invocationResult"]["error"]["cause"] == "USER_UNKNOWN"
    assert unit_info(ex.response, 10)["resultCode"] == "USER_UNKNOWN"
    assert await nf.db["charging_sessions"].count_documents({}) == 0


async def test_blocked_subscriber_is_denied_and_aborted(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    async with NotificationReceiver() as smf_peer:
        smf = nf.smf(SUPI, notify_uri=smf_peer.url("/notify/a"))
        assert (await smf.create()).status == 201
        changes = await nf.ledger.set_status(SUPI, SubscriberStatus.BLOCKED, nf.clock.now())
        await nf.rt.publish_counter_changes(changes)
        got = await smf_peer.wait_for(lambda r: r.path == "/notify/a", 10)
        assert got.http_version == "2"
        assert got.json == {"notificationType": "ABORT_CHARGING"}
        c.validate_schema(c.CHF, "ChargingNotifyRequest", got.json)
        # The running session's next request is refused per rating group.
        ex = await smf.update(Usage(10, 10))
        assert unit_info(ex.response, 10)["resultCode"] == "END_USER_SERVICE_DENIED"
    denied = await nf.smf(SUPI, pdu_session_id=2).create()
    assert denied.status == 403
    assert denied.response["invocationResult"]["error"]["cause"] == "END_USER_REQUEST_DENIED"
    assert unit_info(denied.response, 10)["resultCode"] == "END_USER_SERVICE_DENIED"


async def test_purchase_reauthorizes_a_refused_session(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    await nf.ledger.charge(h.step(SUPI, nf.clock.now(), requested=2048 * MIB, session="x",
                                  seq=1))
    await nf.ledger.charge(h.step(SUPI, nf.clock.now(), used=2048 * MIB, session="x", seq=2))
    async with NotificationReceiver() as smf_peer:
        smf = nf.smf(SUPI, notify_uri=smf_peer.url("/notify/b"))
        ex = await smf.create()
        assert unit_info(ex.response, 10)["resultCode"] == "QUOTA_LIMIT_REACHED"
        other = nf.smf(SUPI, pdu_session_id=2, notify_uri=smf_peer.url("/notify/c"),
                       rating_group=30)
        await other.create(requested=None)  # asks for nothing: nothing to re-authorise
        changes = await nf.ledger.purchase(SUPI, h.DEMO_ADDON, nf.clock.now())
        assert any(ch.quota_restored for ch in changes)
        # The purchase's write carries its counter changes; the effects drain delivers them
        # to the CHF (publishing them here as well would be a second delivery, which may
        # re-authorise twice: delivery is at least once).
        got = await smf_peer.wait_for(lambda r: r.path == "/notify/b", 10)
        assert got.json == {"notificationType": "REAUTHORIZATION",
                            "reauthorizationDetails": [{"ratingGroup": 10}]}
        c.validate_schema(c.CHF, "ChargingNotifyRequest", got.json)
        after = await smf.update(None)
        info = unit_info(after.response, 10)
        assert info["resultCode"] == "SUCCESS" and info["grantedUnit"]["totalVolume"] > 0
        assert [r.path for r in smf_peer.requests] == ["/notify/b"]


async def test_smf_answering_404_ends_the_session_locally(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    async with NotificationReceiver() as smf_peer:
        smf_peer.respond("/gone", Reply(404))
        smf = nf.smf(SUPI, notify_uri=smf_peer.url("/gone/1"))
        await smf.create()
        assert (await used_and_reserved(nf, SUPI))[1] > 0
        changes = await nf.ledger.set_status(SUPI, SubscriberStatus.BLOCKED, nf.clock.now())
        await nf.rt.publish_counter_changes(changes)
        await smf_peer.wait_for(lambda r: r.path == "/gone/1", 10)
        # Closing ends with the session's EDR (after the reservation is released).
        for _ in range(500):
            doc = await nf.db["charging_sessions"].find_one({"_id": smf.ref})
            if doc and doc["status"] == "closed" and len(await edrs(nf, smf.ref or "")) == 2:
                break
            await asyncio.sleep(0.02)
        assert doc is not None and doc["close_reason"] == "peer_gone"
    for _ in range(200):  # the ledger's release and the EDRs follow the session's close
        if (await used_and_reserved(nf, SUPI))[1] == 0 \
                and len(await edrs(nf, smf.ref or "")) == 2:
            break
        await asyncio.sleep(0.02)
    assert (await used_and_reserved(nf, SUPI))[1] == 0
    assert [r["event"] for r in await edrs(nf, smf.ref or "")] == ["create", "peer_gone"]
    ex = await smf.update(Usage(1, 1))
    assert ex.status == 404 and ex.response["cause"] == "RESOURCE_NOT_FOUND"


async def test_supervision_closes_a_silent_session(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI)
    await smf.create()
    assert (await used_and_reserved(nf, SUPI))[1] == 10 * MIB
    nf.clock.advance(2 * 3600 - 1)
    assert await nf.chf.service.supervise_once() == 0
    await smf.update(Usage(MIB, 0))  # heard of again: the deadline moves
    nf.clock.advance(2 * 3600 - 1)
    assert await nf.chf.service.supervise_once() == 0
    nf.clock.advance(2)
    assert await nf.chf.service.supervise_once() == 1
    assert await nf.chf.service.supervise_once() == 0
    used, reserved = await used_and_reserved(nf, SUPI)
    assert (used, reserved) == (MIB, 0)
    records = await edrs(nf, smf.ref or "")
    assert [r["event"] for r in records] == ["create", "update", "supervision_close"]
    ex = await smf.update(Usage(0, 0))
    assert ex.status == 404


async def test_sequence_numbers_and_retransmissions(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI)
    created = await smf.create()
    again = await smf.retransmit()  # the create answer got lost
    assert again.status == 201 and again.response == created.response
    assert again.headers["location"] == created.headers["location"]
    assert await nf.db["charging_sessions"].count_documents({}) == 1
    assert (await used_and_reserved(nf, SUPI))[1] == 10 * MIB
    smf.isn = -1  # an update reusing the create's number is not a retransmission
    reused = await smf.update(Usage(100, 100))
    assert reused.status == 400 and reused.response["cause"] == "MANDATORY_IE_INCORRECT"
    await smf.update(Usage(100, 100))
    await smf.update(Usage(100, 100))
    smf.isn = 0  # an old request arrives late: refused, nothing charged
    late = await smf.update(Usage(5 * MIB, 0))
    assert late.status == 400 and late.response["cause"] == "MANDATORY_IE_INCORRECT"
    assert late.response["invalidParams"][0]["param"] == "/invocationSequenceNumber"
    assert (await used_and_reserved(nf, SUPI))[0] == 400
    smf.isn = 2
    assert (await smf.release(Usage(50, 50))).status == 204
    assert (await smf.retransmit()).status == 204
    assert (await used_and_reserved(nf, SUPI)) == (500, 0)


async def test_roaming_is_recorded_and_refused_without_a_pass(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI, serving_plmn=h.NORTH_ZONE_PLMN)
    ex = await smf.create()
    assert unit_info(ex.response, 10)["resultCode"] == "RATING_FAILED"
    await nf.ledger.purchase(SUPI, h.DEMO_ROAMING_PASS, nf.clock.now())
    ok = await nf.smf(SUPI, serving_plmn=h.NORTH_ZONE_PLMN, pdu_session_id=2).create()
    assert unit_info(ok.response, 10)["resultCode"] == "SUCCESS"
    await settled(nf.db)  # the EDR leaves after the answer
    rec = await nf.db["edrs"].find_one({"result": "SUCCESS"})
    assert rec is not None and rec["roaming"] is True and rec["serving_plmn"] == "99970"
    assert rec["host_network"] == "northwind"


async def test_host_network_settings_follow_the_asking_smf(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    ex = await nf.smf(SUPI, plmn="00102", serving_plmn="00101").create()
    info = unit_info(ex.response, 10)
    # bluepeak: 5 MiB grants valid 30 minutes, threshold 20 %
    assert info["grantedUnit"]["totalVolume"] == 5 * MIB and info["validityTime"] == 1800
    assert info["volumeQuotaThreshold"] == MIB


async def test_bad_requests_are_problem_details(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI)
    body = smf.body(requested=0)
    del body["invocationSequenceNumber"]
    status, resp, headers = await nf.post(CHF_ROOT + "/chargingdata", body, validate=False)
    assert status == 400 and headers["content-type"] == "application/problem+json"
    assert resp["cause"] == "MANDATORY_IE_MISSING"
    c.validate_response(c.CHF, "POST", CHF_ROOT + "/chargingdata", 400, resp,
                        content_type="application/problem+json")
    body = smf.body(requested=0)
    del body["subscriberIdentifier"]
    status, resp, _ = await nf.post(CHF_ROOT + "/chargingdata", body)
    assert status == 400 and resp["cause"] == "MANDATORY_IE_MISSING"
    status, resp, _ = await nf.post(CHF_ROOT + "/chargingdata/nope/update",
                                    smf.body(requested=0))
    assert status == 404 and resp["cause"] == "RESOURCE_NOT_FOUND"
    assert await nf.db["charging_sessions"].count_documents({}) == 0


async def test_two_rating_groups_in_one_request(nf: Nf) -> None:
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf: SmfSim = nf.smf(SUPI)
    body = smf.body(requested=0)
    body["multipleUnitUsage"].append({"ratingGroup": 20, "requestedUnit": {"totalVolume": MIB}})
    status, resp, _ = await nf.post(CHF_ROOT + "/chargingdata", body)
    assert status == 201
    assert unit_info(resp, 20)["grantedUnit"]["totalVolume"] == MIB
    assert unit_info(resp, 10)["grantedUnit"]["totalVolume"] == 10 * MIB
    await settled(nf.db)  # the EDR leaves after the answer
    rec = await nf.db["edrs"].find_one({})
    assert rec is not None and rec["rating_groups"] == [10, 20]
    assert rec["granted"] == 11 * MIB


async def test_one_key_names_every_record_of_a_step(nf: Nf) -> None:
    """The ledger's sequence records, the session's note on the wallet (its number and the
    answer a retransmission gets again) and the EDR of each step all come from one
    ``StepKey``; EDR ids keep their stored format, ``<ref>:<isn>``."""
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI)
    await smf.create()
    await smf.update(Usage(100, 100))
    last = await smf.update(Usage(100, 100))
    ref = smf.ref or ""
    key = StepKey(ref, 2)
    assert key.record_id == f"{ref}:2"
    wallet = await nf.db["ledger_wallets"].find_one({"_id": SUPI})
    assert wallet is not None
    note = wallet["cs"][ref]
    assert note["i"] == key.isn and note["r"]["body"] == last.response
    assert [q[3] for k, q in wallet["sq"].items() if ref in k] == [key.isn]
    session = await nf.chf.service._read(ref, nf.clock.now())
    assert session is not None and session.last_isn == key.isn
    assert [r["_id"] for r in await edrs(nf, ref)] == [
        StepKey(ref, isn).record_id for isn in range(3)]
    assert (await smf.retransmit()).response == last.response


async def test_note_of_a_session_closed_without_the_ledger_is_dropped(nf: Nf) -> None:
    """A session closed here whose ledger close failed (the process died in between)
    leaves its note on the wallet; the reservation sweeper drops it once its deadline lies
    ``ledger.note_grace_s`` behind. A session still open and updated keeps its note."""
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    gone, live = nf.smf(SUPI), nf.smf(SUPI)
    await gone.create()
    await live.create()
    ref = gone.ref or ""
    assert ref and ref != live.ref
    assert await nf.chf.service.store.close(ref, "release", nf.clock.now()) is not None
    grace = nf.rt.settings.ledger.note_grace_s
    for _ in range(3):
        nf.clock.advance(3600)  # within the live session's supervision deadline
        await live.update(Usage(100, 100))
    nf.clock.advance(2 * 3600 + grace - 3 * 3600 + 1)
    await nf.ledger.sweep_due("res", nf.clock.now(), 100)
    wallet = await nf.db["ledger_wallets"].find_one({"_id": SUPI})
    assert wallet is not None and set(wallet["cs"]) == {live.ref}
    assert (await live.update(Usage(100, 100))).status == 200
