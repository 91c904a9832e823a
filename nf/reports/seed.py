"""Synthetic EDRs in bulk, for measuring the export and the reports at scale.

Not a way to make real records: it inserts documents of the real layout (built by
``nf.edr.records``) straight into ``edrs``, bypassing the CHF and PCF. Deterministic for a
seed; ids are ``seed:<n>``, so running it again adds nothing twice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError

from nf.config import Settings
from nf.edr.records import (
    Party,
    SpeedRecord,
    UnitRecord,
    charging_record,
    policy_record,
    purchase_record,
)
from nf.reports.export import COLLECTION
from nf.store.mongo import Db, translate_errors

MIB = 1024 * 1024
BATCH = 5_000
CONCURRENCY = 4


# What a seeded purchase buys: (offer id, kind, price in cents, currency, zone name).
Sale = tuple[str, str, int, str, str | None]


def _doc(i: int, rng: random.Random, start: datetime, span_s: float, subscribers: int,
         brands: list[str], networks: list[tuple[str, str]],
         sales: dict[str, list[Sale]]) -> dict[str, Any]:
    sub = rng.randrange(subscribers)
    brand = brands[sub % len(brands)]
    net, plmn = networks[sub % len(networks)]
    roaming = rng.random() < 0.02
    party = Party(supi=f"imsi-{plmn}{sub:010d}", gpsi=f"msisdn-1555{sub:08d}", brand=brand,
                  host_network=net, serving_plmn="99970" if roaming else plmn,
                  roaming=roaming)
    t = start + timedelta(seconds=rng.random() * span_s)
    r = rng.random()
    rid = f"seed:{i}"
    if r < 0.01:
        return policy_record(event="throttled", time=t, party=party,
                             sm_policy_id=f"seed-pol-{sub}", speed_before=SpeedRecord(4000, 20000),
                             speed_after=SpeedRecord(64, 128), reason="throttled",
                             record_id=rid)
    if r < 0.015:
        offer, kind, price, currency, zone = rng.choice(
            sales.get(brand) or [(f"{brand}-addon", "addon", 300, "USD", None)])
        return purchase_record(time=t, party=party, offer_id=offer, offer_version=1,
                               offer_kind=kind, price_cents=price, currency=currency,
                               bucket_ids=[f"sb{i:x}"], zone_name=zone, record_id=rid)
    ul, dl = rng.randrange(2 * MIB), rng.randrange(20 * MIB)
    unit = UnitRecord(rating_group=10, used_ul=ul, used_dl=dl, used_total=ul + dl,
                      granted=10 * MIB, debited=((f"plan-{sub}", ul + dl),),
                      final=rng.random() < 0.002, throttled=rng.random() < 0.01)
    return charging_record(event="update", time=t, party=party,
                           charging_data_ref=f"seed-{sub}-{i % 7}",
                           invocation_sequence_number=i % 100, result="SUCCESS",
                           units=[unit], record_id=rid)


async def seed_edrs(db: Db, settings: Settings, *, count: int, start: datetime,
                    end: datetime, subscribers: int, brands: list[str], seed: int = 1,
                    sales: dict[str, list[Sale]] | None = None,
                    progress: Callable[[int], None] | None = None) -> int:
    """Insert ``count`` EDRs spread over ``[start, end)``; returns how many are new.
    Purchases pick from ``sales`` (per brand; the catalogue's offers)."""
    networks = [(n.id, n.plmn_ids[0]) for n in settings.networks] or [("default", "00101")]
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    coll = db[COLLECTION]
    inserted = 0
    sem = asyncio.Semaphore(CONCURRENCY)

    async def put(docs: list[dict[str, Any]]) -> None:
        nonlocal inserted
        async with sem, translate_errors("EDR seed insert"):
            try:
                res = await coll.insert_many(docs, ordered=False)
                inserted += len(res.inserted_ids)
            except BulkWriteError as e:
                inserted += e.details.get("nInserted", 0)
        if progress is not None:
            progress(len(docs))

    pending: set[asyncio.Task[None]] = set()
    i = 0
    while i < count:
        n = min(BATCH, count - i)
        docs = [_doc(i + k, rng, start, span, subscribers, brands, networks, sales or {})
                for k in range(n)]
        i += n
        task = asyncio.ensure_future(put(docs))
        pending.add(task)
        if len(pending) >= CONCURRENCY:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for d in done:
                d.result()
    for res in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(res, BaseException):
            raise res
    return inserted
