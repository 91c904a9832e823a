"""Database operations per warm CHF update, measured apart from the mixed load.

Against the running NF: ``sessions`` charging sessions are opened (on subscribers seeded
for this probe, outside the load generator's population), then each sends ``updates``
usage updates one after the other, all sessions at once. The database's
``serverStatus.opcounters`` are read just before the updates and again once the updates
and their background effects (EDRs stored, pending entries acknowledged) have settled.
The same wait is measured with no traffic first, and that idle rate (sweepers and other
background rounds) is subtracted. The result counts every operation a warm update causes,
including its share of the batched background writes. ``writes_per_update`` counts the
inserts, updates and deletes alone (no idle correction needed: idle rounds only read).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.profile_chf import chf_body
from bench.seed import BIG_PLAN, BRAND
from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.store.mongo import make_client

CHF = "/nchf-convergedcharging/v3/chargingdata"
SETTLE_S = 1.5
MIB = 1024 * 1024


def _total(c: dict[str, int]) -> int:
    return sum(c.values())


async def _seed(settings: Settings, supis: list[str]) -> None:
    assert settings.catalog_dir is not None
    net = settings.networks[0]
    client = make_client(settings)
    try:
        ledger = MongoLedger(client[settings.mongodb_database], settings,
                             CatalogHolder.from_dir(settings.catalog_dir))
        await ledger.bulk_create_subscribers(
            [NewSubscriber(supi=s, brand=BRAND, home_network=net.id, plan_offer_id=BIG_PLAN)
             for s in supis], datetime.now(UTC))
    finally:
        await client.close()


async def _probe(sbi: str, supis: list[str], updates: int, opcounters: Any,
                 round_no: int) -> dict[str, Any]:
    async with httpx.AsyncClient(http1=False, http2=True, base_url=sbi, timeout=30) as c:
        async def create(supi: str) -> tuple[str, str, int]:
            cid = uuid.uuid4().int % 2**31
            r = await c.post(CHF, json=chf_body(supi, 0, cid, None))
            assert r.status_code == 201, r.text
            return supi, r.headers["location"].rstrip("/").rsplit("/", 1)[-1], cid

        opened = await asyncio.gather(*(create(s) for s in supis))
        await asyncio.sleep(SETTLE_S)
        idle0 = opcounters()
        await asyncio.sleep(SETTLE_S)
        idle1 = opcounters()
        idle = _total(idle1) - _total(idle0)

        async def run(supi: str, ref: str, cid: int) -> int:
            bad = 0
            for isn in range(1, updates + 1):
                r = await c.post(f"{CHF}/{ref}/update", json=chf_body(supi, isn, cid, MIB))
                bad += r.status_code != 200
            return bad

        before = opcounters()
        t0 = time.monotonic()
        errors = sum(await asyncio.gather(*(run(*o) for o in opened)))
        busy_s = time.monotonic() - t0
        await asyncio.sleep(SETTLE_S)
        after = opcounters()
        for supi, ref, cid in opened:  # leave nothing open for the next round
            await c.post(f"{CHF}/{ref}/release",
                         json=chf_body(supi, updates + 1, cid, 0, requested=False))
    n = len(supis) * updates
    window_s = busy_s + SETTLE_S
    background = idle * window_s / SETTLE_S
    ops = _total(after) - _total(before) - background
    by_kind = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    # Writes alone: idle rounds read (sweepers, revalidation) but write almost nothing, so
    # this figure needs no idle correction.
    writes = sum(by_kind.get(k, 0) for k in ("insert", "update", "delete"))
    return {"round": round_no, "updates": n, "errors": errors, "seconds": round(busy_s, 2),
            "ops": round(ops, 1), "idle_ops_subtracted": round(background, 1),
            "by_kind": by_kind, "per_update": round(ops / n, 3) if n else None,
            "writes_per_update": round(writes / n, 3) if n else None}


def measure(settings: Settings, sbi: str, opcounters: Any, round_no: int,
            sessions: int = 32, updates: int = 10) -> dict[str, Any]:
    """One probe round (its own subscribers); returns the figures."""
    plmn = settings.networks[0].plmn_ids[0]
    digits = 15 - len(plmn) - 1
    supis = [f"imsi-{plmn}9{round_no * sessions + i:0{digits}d}" for i in range(sessions)]
    asyncio.run(_seed(settings, supis))
    return asyncio.run(_probe(sbi, supis, updates, opcounters, round_no))
