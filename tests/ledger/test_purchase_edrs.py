"""Purchase EDRs ride the purchase's own wallet write (``nf.edr.purchases``): a process that
dies right after the purchase leaves the record to another process's sweeper, and a
record delivered twice is stored once. Real database; the demo catalogue's terms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nf.catalog import CatalogHolder
from nf.catalog.model import AnyOffer, FamilyPlan, RoamingPass
from nf.clock import FakeClock
from nf.config import Settings
from nf.edr.purchases import PurchaseEdrs
from nf.edr.writer import EdrWriter
from nf.effects import FIELD
from nf.ledger.effects import change_from, counter_drain
from nf.ledger.mongo import COLLECTION, MongoLedger
from nf.ledger.port import SubscriberStatus
from nf.runtime import Runtime
from nf.store.mongo import Db
from tests.ledger import helpers as h


def _process(db: Db, settings: Settings, clock: FakeClock, immediate: bool
             ) -> tuple[Runtime, MongoLedger]:
    fx = settings.effects.model_copy(update={"immediate": immediate, "sweep_grace_s": 1.0})
    s = settings.model_copy(update={"effects": fx})
    rt = Runtime(settings=s, clock=clock, db=db)
    assert s.catalog_dir is not None
    led = MongoLedger(db, s, CatalogHolder.from_dir(s.catalog_dir), effects=counter_drain(rt))
    rt.counter_listeners.append(PurchaseEdrs(led, EdrWriter(rt)))
    return rt, led


async def _buy_and_die(db: Db, settings: Settings, clock: FakeClock, supi: str,
                       offer: str) -> datetime:
    """Create ``supi``, buy ``offer`` in a process that never delivers its effects."""
    _rt, led = _process(db, settings, clock, immediate=False)
    now = clock.now()
    await h.subscriber(led, now, supi, h.DEMO_CAPPED, gpsi="msisdn-15550001234")
    await led.purchase(supi, offer, now)
    return now


async def _edr_after_death(db: Db, settings: Settings, clock: FakeClock, supi: str,
                           offer_id: str) -> tuple[dict[str, Any], str, AnyOffer, datetime,
                                                   MongoLedger]:
    """Buy ``offer_id`` in a process that dies before delivering; another process's sweeper
    writes the purchase EDR. Returns the one EDR, the offer's brand and terms, the purchase
    time and the second process's ledger."""
    now = await _buy_and_die(db, settings, clock, supi, offer_id)
    assert await db.edrs.count_documents({"supi": supi}) == 0  # nothing delivered yet

    rt2, led2 = _process(db, settings, clock, immediate=True)
    drain = counter_drain(rt2)
    clock.advance(2)  # past the grace time: the other process's sweeper takes it over
    assert await drain.sweep_once() >= 1

    edrs = [d async for d in db.edrs.find({"supi": supi, "kind": "purchase"})]
    assert len(edrs) == 1
    assert settings.catalog_dir is not None
    found = CatalogHolder.from_dir(settings.catalog_dir).current.offer(offer_id)
    assert found is not None
    return edrs[0], found[0], found[1], now, led2


async def test_a_purchase_left_pending_by_a_dead_process_gets_its_edr(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    supi = "imsi-001010000000801"
    edr, brand, offer, now, led2 = await _edr_after_death(db, settings, clock, supi,
                                                          h.DEMO_ROAMING_PASS)
    assert isinstance(offer, RoamingPass)
    assert (edr["offer_id"], edr["offer_version"], edr["offer_kind"], edr["price_cents"],
            edr["currency"], edr["zone_name"]) == (
        offer.id, offer.version, offer.kind, offer.price_cents, offer.currency,
        offer.zone_name)
    assert (edr["brand"], edr["host_network"], edr["gpsi"]) == (
        brand, "northwind", "msisdn-15550001234")
    bal = await led2.balance(supi, now)
    assert bal is not None
    assert edr["bucket_ids"] == [b.bucket_id for b in bal.buckets if b.offer_id == offer.id]
    assert edr["_id"] == f"buy:{supi}:{edr['bucket_ids'][0]}"


async def test_a_family_plan_left_pending_by_a_dead_process_gets_its_edr(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """A family plan adds no bucket of the buyer's: the group's own insert carries the
    purchase, and the EDR is named by the offer and the time. Joining the group the plan
    made is no second purchase (one EDR)."""
    supi = "imsi-001010000000804"
    edr, brand, offer, now, led2 = await _edr_after_death(db, settings, clock, supi,
                                                          h.DEMO_FAMILY)
    assert isinstance(offer, FamilyPlan)
    assert (edr["_id"], edr["offer_id"], edr["offer_version"], edr["offer_kind"],
            edr["price_cents"], edr["currency"], edr["bucket_ids"]) == (
        f"buy:{supi}:{offer.id}:{now.isoformat()}", offer.id, offer.version, "family_plan",
        offer.price_cents, offer.currency, [])
    assert (edr["brand"], edr["gpsi"]) == (brand, "msisdn-15550001234")
    sub = await led2.subscriber(supi, now)
    assert sub is not None and sub.group_id is not None


async def test_a_group_created_without_a_purchase_writes_no_purchase_edr(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """``POST /groups`` (a group set up by provisioning) is no purchase."""
    _rt, led = _process(db, settings, clock, immediate=False)
    now = clock.now()
    owner = await h.capped(led, now, "imsi-001010000000805")
    gid = await led.create_group(owner, h.DEMO_FAMILY, now)
    doc = await db[COLLECTION].find_one({"_id": f"grp:{gid}"})
    assert doc is not None and not doc.get(FIELD)


async def test_a_purchase_edr_delivered_twice_is_stored_once(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    supi = "imsi-001010000000802"
    await _buy_and_die(db, settings, clock, supi, h.DEMO_ADDON)
    doc = await db[COLLECTION].find_one({"_id": supi})
    assert doc is not None
    changes = [change_from(e["p"]) for e in doc[FIELD]]
    assert [c.purchase.offer_id for c in changes if c.purchase] == [h.DEMO_ADDON]

    rt2, _led2 = _process(db, settings, clock, immediate=True)
    listener = rt2.counter_listeners[-1]
    for _ in range(3):  # at-least-once delivery: the same change again and again
        await listener.counters_changed(changes)
    assert await db.edrs.count_documents({"supi": supi, "kind": "purchase"}) == 1


async def test_other_counter_changes_write_no_purchase_edr(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    rt, led = _process(db, settings, clock, immediate=False)
    now = clock.now()
    supi = await h.capped(led, now, "imsi-001010000000803")
    await h.charge(led, supi, now, requested=50 * h.MIB, seq=1)
    await led.set_status(supi, SubscriberStatus.SUSPENDED, now)
    doc = await db[COLLECTION].find_one({"_id": supi})
    assert doc is not None
    changes = [change_from(e["p"]) for e in doc[FIELD]]
    assert changes and all(c.purchase is None for c in changes)  # the status change
    await rt.counter_listeners[-1].counters_changed(changes)
    assert await db.edrs.count_documents({"supi": supi}) == 0
