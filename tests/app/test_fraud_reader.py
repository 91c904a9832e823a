"""The fraud reader against the real database, with a fake clock: two processes share one
leased checkpoint (one reads, none acts twice), a takeover after a crash re-reads without
acting twice, a record stored late is still read, a mitigation left owed by a crash is
finished, waiting rules fire on time, and resolutions lift only what they should."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from nf.clock import FakeClock
from nf.config import Settings
from nf.edr.records import Party, charging_record, policy_record, purchase_record
from nf.edr.writer import EdrWriter
from nf.fraud.service import FraudService
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.ledger.part import LedgerPart
from nf.ledger.port import SubscriberStatus
from nf.notify.outbox import MongoOutbox
from nf.runtime import Runtime
from nf.security.webhooks import SIGNATURE_HEADER, verify
from nf.settings.fraud import FraudSettings
from nf.store.mongo import Db
from tests.peers import NotificationReceiver

SUPI = "imsi-999001000000022"
FRAUD = {
    "rules": {"multi_network": {"action": "throttle"},
              "impossible_travel": {"action": "off"},
              "purchase_velocity": {"action": "suspend", "max_purchases": 2},
              "orphan_session": {"action": "case", "grace_s": 60}},
    "late_window_s": 30, "late_scan_interval_s": 1, "lease_s": 5,
}


def _settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"fraud": FraudSettings.model_validate(FRAUD)})


async def _node(settings: Settings, db: Db, clock: FakeClock
                ) -> tuple[FraudService, MongoLedger]:
    rt = Runtime(settings=_settings(settings), clock=clock, db=db)
    lp = LedgerPart(rt)
    await lp.ensure_indexes()
    svc = FraudService(rt, ledger=lp.ledger, outbox=MongoOutbox(rt), edrs=EdrWriter(rt))
    await svc.store.ensure_indexes()
    return svc, lp.ledger


def _pol(clock: FakeClock, ref: str, net: str, plmn: str, pdu: int = 1,
         event: str = "created", dt: float = 0) -> dict[str, Any]:
    return policy_record(event=event, time=clock.now() + timedelta(seconds=dt),
                         party=Party(SUPI, brand="orbit", host_network=net,
                                     serving_plmn=plmn, pdu_session_id=pdu),
                         sm_policy_id=ref, speed_before=None, speed_after=None,
                         record_id=f"pcf:{ref}:{event}")


async def _cases(db: Db, **q: Any) -> list[dict[str, Any]]:
    return [d async for d in db["fraud_cases"].find(q)]


@pytest.fixture
async def two(settings: Settings, db: Db, clock: FakeClock
              ) -> tuple[FraudService, FraudService, MongoLedger]:
    a, ledger = await _node(settings, db, clock)
    b, _ = await _node(settings, db, clock)
    await ledger.create_subscriber(NewSubscriber(SUPI, "orbit", "redmoor",
                                                 plan_offer_id="orbit-unlimited"),
                                   clock.now())
    return a, b, ledger


async def test_one_reader_at_a_time_and_a_takeover_acts_once(
        two: tuple[FraudService, FraudService, MongoLedger], db: Db,
        clock: FakeClock) -> None:
    a, b, ledger = two
    await db["edrs"].insert_many([_pol(clock, "p1", "redmoor", "999001"),
                                  _pol(clock, "p2", "northwind", "00101", dt=0.001)])
    clock.advance(0.1)
    assert await a.round() == 2
    assert await b.round() == 0 and not b.leader
    cases = await _cases(db)
    assert [c["rule"] for c in cases] == ["multi_network"]
    assert cases[0]["applied"] == "throttle" and cases[0]["action_state"] == "done"
    view = await ledger.subscriber(SUPI, clock.now())
    assert view is not None and view.speed.reason == "fraud"
    # A dies without releasing its lease; once it expires, B takes over and reads the
    # late window again: nothing is detected or recorded twice.
    clock.advance(6)
    assert await b.round() >= 2 and b.leader
    assert len(await _cases(db)) == 1
    assert await db["edrs"].count_documents({"kind": "fraud", "event": "detected"}) == 1
    # A comes back: the lease is B's.
    assert await a.round() == 0 and not a.leader
    # B goes on with what is new.
    await db["edrs"].insert_one(_pol(clock, "p3", "bluepeak", "00102", pdu=3))
    clock.advance(0.1)
    assert await b.round() == 1


async def test_a_record_stored_late_is_read(
        two: tuple[FraudService, FraudService, MongoLedger], db: Db,
        clock: FakeClock) -> None:
    a, _, ledger = two
    party = Party(SUPI, brand="orbit", host_network="redmoor")
    t0 = clock.now()
    await db["edrs"].insert_many([
        purchase_record(time=t0, party=party, offer_id="x", offer_kind="addon",
                        offer_version=1, price_cents=100, currency="EUR"),
        purchase_record(time=t0 + timedelta(seconds=1), party=party, offer_id="x",
                        offer_kind="addon", offer_version=1, price_cents=100, currency="EUR"),
        charging_record(event="create", time=t0 + timedelta(seconds=5), party=party,
                        charging_data_ref="c1", invocation_sequence_number=0,
                        result="SUCCESS", record_id="c1:0")])
    clock.advance(6)
    assert await a.round() == 3
    assert await _cases(db) == []
    # A third purchase, stored only now with its time before the checkpoint.
    await db["edrs"].insert_one(purchase_record(
        time=t0 + timedelta(seconds=2), party=party, offer_id="x", offer_kind="addon",
        offer_version=1, price_cents=100, currency="EUR"))
    clock.advance(2)
    assert await a.round() == 1
    cases = await _cases(db, rule="purchase_velocity")
    assert len(cases) == 1 and cases[0]["applied"] == "suspend"
    view = await ledger.subscriber(SUPI, clock.now())
    assert view is not None and view.status is SubscriberStatus.SUSPENDED
    # Resolved as a false positive: active again; the rule stays quiet for the cool-down.
    await a.resolve(cases[0]["_id"], "false_positive", {"key": "k"}, None)
    view = await ledger.subscriber(SUPI, clock.now())
    assert view is not None and view.status is SubscriberStatus.ACTIVE
    await db["edrs"].insert_one(purchase_record(
        time=clock.now(), party=party, offer_id="x", offer_kind="addon",
        offer_version=1, price_cents=100, currency="EUR"))
    clock.advance(2)
    await a.round()
    assert len(await _cases(db, rule="purchase_velocity")) == 1


async def test_owed_mitigation_is_finished_and_orphans_fire_after_the_grace(
        two: tuple[FraudService, FraudService, MongoLedger], db: Db,
        clock: FakeClock) -> None:
    a, _, ledger = two
    assert await a.round() == 0 and a.leader
    # A case written before a crash, its throttle never applied.
    await db["fraud_cases"].insert_one({
        "_id": "owed1", "brand": "orbit", "supi": SUPI, "rule": "multi_network",
        "status": "open", "action": "throttle", "applied": None, "action_state": "owed",
        "opened_at": clock.now(), "updated_at": clock.now(), "audit": []})
    clock.advance(10)
    assert await a.finish_owed() == 1
    view = await ledger.subscriber(SUPI, clock.now())
    assert view is not None and view.speed.reason == "fraud"
    # Confirmed: the throttle stays; care reinstating the subscriber lifts it.
    await a.resolve("owed1", "confirmed", {"key": "k"}, "seen on two networks")
    view = await ledger.subscriber(SUPI, clock.now())
    assert view is not None and view.speed.reason == "fraud"
    await ledger.set_status(SUPI, SubscriberStatus.ACTIVE, clock.now())
    view = await ledger.subscriber(SUPI, clock.now())
    assert view is not None and view.speed.reason == "plan"

    # A charging session whose policy association never comes.
    await db["edrs"].insert_one(charging_record(
        event="create", time=clock.now(), party=Party(SUPI, brand="orbit",
                                                      host_network="redmoor",
                                                      serving_plmn="999001",
                                                      pdu_session_id=4),
        charging_data_ref="c9", invocation_sequence_number=0, result="SUCCESS",
        record_id="c9:0"))
    clock.advance(1)
    await a.round()
    clock.advance(30)
    assert await a.tick() == 0
    clock.advance(31)
    assert await a.tick() == 1
    cases = await _cases(db, rule="orphan_session")
    assert len(cases) == 1
    assert cases[0]["evidence"]["orphans"][0]["session"] == "c:c9"


async def test_a_state_written_meanwhile_is_not_overwritten(
        two: tuple[FraudService, FraudService, MongoLedger], db: Db,
        clock: FakeClock) -> None:
    a, _, _ = two
    await db["edrs"].insert_one(_pol(clock, "p1", "redmoor", "999001"))
    clock.advance(0.1)
    await a.round()
    (st,) = (await a.store.load_states([SUPI])).values()
    exp = clock.now() + timedelta(hours=1)
    assert await a.store.save_states([(st, exp, None)]) == []
    # The same version again (another writer got there first): refused, reported.
    assert await a.store.save_states([(st, exp, None)]) == [SUPI]
    doc = await db["fraud_state"].find_one({"_id": SUPI})
    assert doc is not None and doc["v"] == st.version + 1


async def test_a_reader_catching_up_takes_no_pdu_session_for_an_orphan(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """A backlog (the reader was down): each PDU session's charging record is read a
    batch before its policy record (the policy record is 15 s later, two records a
    round), an hour after both were stored. Neither the records nor
    the waiting rules take the charging sessions for orphans; a real orphan is still
    found once the backlog is read."""
    fraud = {**FRAUD, "batch_max": 2}
    rt = Runtime(settings=settings.model_copy(update={
        "fraud": FraudSettings.model_validate(fraud)}), clock=clock, db=db)
    lp = LedgerPart(rt)
    await lp.ensure_indexes()
    svc = FraudService(rt, ledger=lp.ledger, outbox=MongoOutbox(rt), edrs=EdrWriter(rt))
    await svc.store.ensure_indexes()
    recs = []
    for n in range(3):
        party = Party(SUPI, brand="orbit", host_network="redmoor", serving_plmn="999001",
                      pdu_session_id=n + 1)
        t = clock.now() + timedelta(seconds=n * 10)
        recs.append(charging_record(event="create", time=t, party=party,
                                    charging_data_ref=f"c{n}", invocation_sequence_number=0,
                                    result="SUCCESS", record_id=f"c{n}:0"))
        recs.append(_pol(clock, f"p{n}", "redmoor", "999001", pdu=n + 1, dt=n * 10 + 15))
    recs.append(charging_record(  # this one never gets its policy association
        event="create", time=clock.now() + timedelta(seconds=40),
        party=Party(SUPI, brand="orbit", host_network="redmoor", serving_plmn="999001",
                    pdu_session_id=9),
        charging_data_ref="c9", invocation_sequence_number=0, result="SUCCESS",
        record_id="c9:0"))
    await db["edrs"].insert_many(recs)
    clock.advance(3600)  # read an hour late, two records a round, a tick after each
    for _ in range(3):
        assert await svc.round() == 2
        await svc.tick()
    assert await _cases(db, rule="orphan_session") == []
    assert await svc.round() == 1  # caught up: the waiting rules run at the present
    await svc.tick()
    cases = await _cases(db, rule="orphan_session")
    assert [o["session"] for c in cases for o in c["evidence"]["orphans"]] == ["c:c9"]


async def test_a_case_webhook_is_signed_with_the_brand_secret(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """The case reaches the brand's webhook (a real HTTP/2 receiver) with the notice
    webhooks' signature: HMAC over the body with the brand's fraud secret and the time of
    the send, which a receiver checks against its clock."""
    secret = "fraud-secret-orbit-0123456789"
    async with NotificationReceiver() as crm:
        cfg = {**FRAUD, "brands": {"orbit": {"webhook_url": crm.url("/fraud/orbit"),
                                             "webhook_secret": secret}}}
        rt = Runtime(settings=settings.model_copy(
            update={"fraud": FraudSettings.model_validate(cfg)}), clock=clock, db=db)
        lp = LedgerPart(rt)
        await lp.ensure_indexes()
        outbox = MongoOutbox(rt)
        svc = FraudService(rt, ledger=lp.ledger, outbox=outbox, edrs=EdrWriter(rt))
        await svc.store.ensure_indexes()
        await lp.ledger.create_subscriber(NewSubscriber(SUPI, "orbit", "redmoor",
                                                        plan_offer_id="orbit-unlimited"),
                                          clock.now())
        await db["edrs"].insert_many([_pol(clock, "p1", "redmoor", "999001"),
                                      _pol(clock, "p2", "northwind", "00101", dt=0.001)])
        clock.advance(0.1)
        assert await svc.round() == 2
        sender = asyncio.create_task(outbox.run())
        try:
            hook = await crm.wait_for(lambda r: r.path == "/fraud/orbit", 10)
        finally:
            rt.stopping.set()
            await asyncio.wait_for(sender, 10)
    assert hook.json["rule"] == "multi_network" and hook.json["supi"] == SUPI
    header = hook.header(SIGNATURE_HEADER)
    assert header is not None
    now = int(clock.now().timestamp())
    assert verify(secret, header, hook.body, now)
    assert not verify("another-secret-0123456789", header, hook.body, now)
    assert not verify(secret, header, hook.body, now + 3600)  # a replay an hour later


def test_a_case_webhook_without_a_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        FraudSettings.model_validate(
            {"brands": {"orbit": {"webhook_url": "http://crm.example/fraud"}}})


async def test_open_cases_are_counted_by_brand(db: Db, settings: Settings,
                                               clock: FakeClock) -> None:
    """``nf_fraud_cases_open``: open cases per brand (a brand with rules of its own shows
    at 0 before its first case; a brand whose cases were all resolved goes back to 0)."""
    fraud = FraudSettings.model_validate({**FRAUD, "brands": {"harbor": {}}})
    rt = Runtime(settings=settings.model_copy(update={"fraud": fraud}), clock=clock, db=db)
    svc = FraudService(rt, ledger=LedgerPart(rt).ledger, outbox=MongoOutbox(rt),
                       edrs=EdrWriter(rt))
    await svc.store.ensure_indexes()
    opened = clock.now()
    await svc.store.insert_cases([
        {"_id": f"c{i}", "supi": f"imsi-00101000000090{i}", "brand": brand, "status": status,
         "rule": "usage_velocity", "opened_at": opened}
        for i, (brand, status) in enumerate([("lumen", "open"), ("lumen", "open"),
                                             ("lumen", "false_positive"), (None, "open"),
                                             ("pebble", "open")])])

    def gauge() -> dict[str, float]:
        return {b: svc.metrics.open.labels(b)._value.get() for b in svc.metrics.open_brands}

    assert await svc.store.open_by_brand() == {"lumen": 2, "unknown": 1, "pebble": 1}
    svc.metrics.count_open(await svc.store.open_by_brand())
    assert gauge() == {"lumen": 2, "unknown": 1, "pebble": 1, "harbor": 0}
    await db["fraud_cases"].update_many({"brand": "pebble"}, {"$set": {"status": "confirmed"}})
    svc.metrics.count_open(await svc.store.open_by_brand())
    assert gauge() == {"lumen": 2, "unknown": 1, "pebble": 0, "harbor": 0}
