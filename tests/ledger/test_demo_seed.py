"""The demo dataset: every brand gets its subscribers and a family; seeding twice is a no-op."""

from __future__ import annotations

from datetime import UTC, datetime

from nf.config import Settings
from nf.demo import seed
from nf.demo.subscribers import BRANDS
from nf.ledger.mongo import MongoLedger
from nf.ledger.port import RoamingState
from nf.store.mongo import Db
from tests.ledger import helpers as h


async def test_seed_is_idempotent_and_complete(db: Db, settings: Settings) -> None:
    first = await seed(settings, MongoLedger)
    assert first["subscribers_created"] == 36 and first["family_groups_created"] == 9
    docs = [d async for d in db["ledger_wallets"].find({}, {"v": 1})]
    second = await seed(settings, MongoLedger)
    assert second["subscribers_created"] == 0 and second["family_groups_created"] == 0
    assert [d async for d in db["ledger_wallets"].find({}, {"v": 1})] == docs
    led = h.make_ledger(db, settings)
    now = datetime.now(UTC)  # seed uses the system clock
    v = await led.subscriber("imsi-001010000000002", now)
    assert v is not None and v.brand == "lumen"
    assert v.counters.roaming is RoamingState.AVAILABLE
    for brand in BRANDS:
        g = await led.group(f"{brand}-family", now)
        assert g is not None and len(g.members) == 2, brand
        assert {m.brand for m in g.members} == {brand}
    bal = await led.balance("imsi-001020000000006", now)  # harbor, unlimited
    assert bal is not None and bal.subscriber.brand == "harbor"
    assert bal.subscriber.home_network == "bluepeak"
    assert {b.kind for b in bal.buckets} == {"plan", "roaming"}
