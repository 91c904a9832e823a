"""The channels against real peers, in process, on the real database: the SMPP channel
against the npm ``smpp`` SMSC (throttling, concatenated UCS-2, receipts), the webhook
channel against a real HTTP receiver (signature, retries), preferences and quiet hours."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from nf.catalog import CatalogHolder
from nf.clock import SystemClock
from nf.config import BrandNotices, NoticeSettings, Settings, SmsBrand, SmsSettings
from nf.ledger.mongo import MongoLedger
from nf.ledger.port import CounterChange, PurchaseMark, UsageMark
from nf.runtime import Runtime
from nf.security.webhooks import SIGNATURE_HEADER, verify
from nf.store.mongo import Db
from nf.subnotify.holder import this_process
from nf.subnotify.part import SubNoticePart
from tests.ledger import helpers as h
from tests.peers import NotificationReceiver, Reply
from tests.subnotify.smsc import PASSWORD, SYSTEM_ID, running_smsc

SUPI = "imsi-001010000005151"
GPSI = "msisdn-34600999888"
MIB = 1024 * 1024
SECRET = "brand-webhook-secret-0123456789"


def configure(settings: Settings, **kw: Any) -> Settings:
    return settings.model_copy(update={"catalog_dir": h.TEST_CATALOG, **kw})


@contextlib.asynccontextmanager
async def running(part: SubNoticePart, *workers: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w()) for w in workers]
    try:
        yield
    finally:
        part.rt.stopping.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def setup(settings: Settings, db: Db) -> tuple[SubNoticePart, MongoLedger, Any]:
    rt = Runtime(settings=settings, clock=SystemClock(), db=db)
    ledger = MongoLedger(db, settings, CatalogHolder.from_dir(h.TEST_CATALOG))
    await ledger.ensure_indexes()
    part = SubNoticePart(rt, ledger, ledger.catalog)
    await part.ensure_indexes()
    now = rt.clock.now()
    await h.subscriber(ledger, now, SUPI, "t-unlimited", brand="testco", gpsi=GPSI)
    got = await ledger.wallet(SUPI, now)
    assert got is not None
    return part, ledger, got[1]


def usage_change(m: Any, pct: int) -> CounterChange:
    v = m.seen
    assert v is not None
    u = UsageMark("plan", 10 * MIB, 0, 10 * MIB * pct // 100, m.period_start, m.period_end,
                  (pct,))
    return CounterChange(supi=SUPI, before=v.counters, after=v.counters, speed=v.speed,
                         usage=u)


async def until(pred: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not await pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_smsc_throttling_backs_off_then_long_ucs2_text_goes_in_parts(
        settings: Settings, db: Db, tmp_path: Path) -> None:
    with running_smsc(tmp_path, throttle_first=2) as smsc:
        s = configure(settings, sms=SmsSettings(
            enabled=True, port=smsc.port, system_id=SYSTEM_ID, password=PASSWORD,
            brands={"testco": SmsBrand(source_addr="34123", source_ton=1, source_npi=1)},
            throttle_backoff_s=0.2, window=4))
        part, _ledger, m = await setup(s, db)
        await part.outbox.set_preferences(SUPI, True, "es", part.rt.clock.now())
        await part.counters_changed([usage_change(m, 50)])
        await part.counters_changed([usage_change(m, 50)])  # heard twice: sent once
        async with running(part, part.sms.run):
            async def delivered() -> bool:
                docs = await part.outbox.for_subscriber(SUPI, 10)
                return len(docs) == 1 and docs[0]["state"] == "delivered"
            await until(delivered)
        doc = (await part.outbox.for_subscriber(SUPI, 10))[0]
    recs = smsc.records()
    throttled = [r for r in recs if r["pdu"] == "submit_sm" and r.get("throttled")]
    subs = [r for r in recs if r["pdu"] == "submit_sm" and not r.get("throttled")]
    assert len(throttled) == 2 and [r["pdu"] for r in recs[:2]] == ["listening",
                                                                   "bind_transceiver"]
    assert recs[1]["ok"] and recs[1]["system_id"] == SYSTEM_ID
    # After the throttle answers, the backoff held the next attempts back.
    assert subs[0]["t"] - throttled[0]["t"] >= 200
    want = doc["text"]
    assert "día" in want and len(want) > 70
    assert len(subs) == 2 and all(r["data_coding"] == 8 and r["esm_class"] & 0x40
                                  for r in subs)
    udh = [bytes.fromhex(r["udh"][0]) for r in subs]
    # IE 0x00 (concatenation, 8-bit reference), length 3: ref, total, sequence
    assert [u[:2] for u in udh] == [b"\x00\x03"] * 2
    assert [u[3:] for u in udh] == [bytes([2, 1]), bytes([2, 2])]
    assert udh[0][2] == udh[1][2]  # same reference
    assert "".join(r["message"] for r in subs) == want
    assert {(r["source_addr"], r["source_addr_ton"], r["destination_addr"]) for r in subs} \
        == {("34123", 1, "34600999888")}
    # Both parts were throttled together: one retry of the notice.
    assert doc["attempts"] == 2 and doc["language"] == "es"


async def test_webhook_signed_retried_quiet_hours_and_opt_out(
        settings: Settings, db: Db) -> None:
    async with NotificationReceiver() as crm:
        crm.respond("/hook", Reply(503), times=1)
        now = SystemClock().now()
        # Quiet hours around now (UTC brand): non-urgent notices wait, urgent ones go.
        start = (now - timedelta(hours=1)).strftime("%H:%M")
        end = (now + timedelta(hours=1)).strftime("%H:%M")
        s = configure(settings, notices=NoticeSettings(
            poll_interval_s=0.2, webhook_backoff_s=0.2, brands={"testco": BrandNotices(
                webhook_url=crm.url("/hook"), webhook_secret=SECRET, webhook_enabled=True,
                quiet_start=start, quiet_end=end, topup="*123#")}))
        part, _ledger, m = await setup(s, db)
        v = m.seen
        assert v is not None
        await part.outbox.set_preferences(SUPI, False, None, now)  # no reminders
        p = PurchaseMark("t-addon-2", "addon", "bkt-1", 2 * MIB, now + timedelta(hours=1),
                         now)  # expires within the lead time: only "expired" is scheduled
        await part.counters_changed([
            usage_change(m, 80),
            CounterChange(supi=SUPI, before=v.counters, after=v.counters, speed=v.speed,
                          purchase=p)])
        docs = {d["kind"]: d for d in await part.outbox.for_subscriber(SUPI, 10)}
        assert {k: d["state"] for k, d in docs.items()} == {
            "usage": "held", "addon_purchased": "queued", "addon_expired": "scheduled"}
        assert docs["usage"]["not_before"].strftime("%H:%M") == end
        # Due now (as if the hour had passed) and opted out: suppressed, never posted.
        await db["sub_notices"].update_one({"_id": docs["addon_expired"]["_id"]},
                                           {"$set": {"not_before": now}})
        async with running(part, part.web.run):
            async def settled() -> bool:
                ds = {d["kind"]: d["state"] for d in await part.outbox.for_subscriber(SUPI, 9)}
                return ds.get("addon_purchased") == "delivered" and \
                    ds.get("addon_expired") == "suppressed"
            await until(settled)
        got = [r for r in crm.requests if r.path == "/hook"]
    assert [r.status for r in got] == [503, 204]  # retried after the 503
    r = got[-1]
    sig = r.header(SIGNATURE_HEADER.lower())
    assert sig is not None and verify(SECRET, sig, r.body, int(time.time()))
    assert not verify(SECRET, sig, r.body + b" ", int(time.time()))
    body = json.loads(r.body)
    assert body["event"] == "addon_purchased" and body["gpsi"] == GPSI
    assert body["text"].startswith("Test Co: 2 MiB 7 days is active: 2 MB until ")
    assert body["data"]["quota"] == 2 * MIB and body["brand"] == "testco"
    final = {d["kind"]: d for d in await part.outbox.for_subscriber(SUPI, 9)}
    assert final["usage"]["state"] == "held" and final["addon_purchased"]["attempts"] == 2


async def test_a_restarted_sender_takes_back_what_its_dead_predecessor_held(
        settings: Settings, db: Db) -> None:
    """Three webhook notices were being sent when their senders stopped: one by a process
    of this instance on this host that has died, one by a live process of this instance,
    one by another instance. The restarted sender sends the first at once, not after the
    30 s lease; the other two wait for theirs."""
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    async with NotificationReceiver() as crm:
        s = configure(settings, notices=NoticeSettings(
            poll_interval_s=0.1, lease_s=30, brands={"testco": BrandNotices(
                webhook_url=crm.url("/hook"), webhook_secret=SECRET,
                webhook_enabled=True)}))
        part, _ledger, m = await setup(s, db)
        await part.counters_changed([usage_change(m, 50)])
        (doc,) = await part.outbox.for_subscriber(SUPI, 10)
        docs = [{**doc, "_id": f"{doc['_id']}#{i}", "seq": i} for i in range(3)]
        await db["sub_notices"].delete_many({})
        await db["sub_notices"].insert_many(docs)
        me = this_process(s.instance_id)
        holders = [replace(me, pid=dead.pid, token="before"),  # a dead predecessor
                   replace(me, pid=os.getppid(), token="sibling"),  # alive
                   replace(me, instance="nf-other", pid=dead.pid, token="other")]
        now = part.rt.clock.now()
        for h_ in holders:
            assert len(await part.outbox.claim("webhook", now, h_)) == 1
        async with running(part, part.web.run):
            async def first_sent() -> bool:
                d = await db["sub_notices"].find_one({"_id": docs[0]["_id"]})
                return d is not None and d["state"] == "delivered"
            await until(first_sent, 10)
            await asyncio.sleep(0.5)
        states = [d["state"] async for d in db["sub_notices"].find().sort("seq", 1)]
        assert states == ["delivered", "sending", "sending"]
        assert len([r for r in crm.requests if r.path == "/hook"]) == 1


async def test_a_blocked_line_that_buys_an_add_on_is_told_its_data_is_back(
        settings: Settings, db: Db) -> None:
    """A blocking plan's line was cut at the cap, not slowed: the add-on brings its data
    back, and the notice says so instead of "full speed is back"."""
    s = configure(settings, sms=SmsSettings(
        enabled=True, port=9, system_id=SYSTEM_ID, password=PASSWORD,
        brands={"testco": SmsBrand(source_addr="34123")}))
    part, ledger, _ = await setup(s, db)
    supi = "imsi-001010000005152"
    now = part.rt.clock.now()
    await h.subscriber(ledger, now, supi, "t-capped", brand="testco", gpsi=GPSI)
    out = await h.charge(ledger, supi, now, used=10 * MIB)
    await part.counters_changed(out.counter_changes)
    await part.counters_changed(await ledger.purchase(supi, "t-addon-2", now))
    texts = {d["kind"]: d["text"] for d in await part.outbox.for_subscriber(supi, 20)}
    assert "cap_redirected" in texts  # the brand redirects at a blocking cap
    assert texts["data_restored"] == "Test Co: your data is back on."
    assert "speed_restored" not in texts
