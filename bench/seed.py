"""The benchmark's population: a catalogue with the two plans it needs, and the subscribers,
created in bulk with the ledger's own function (``MongoLedger.bulk_create_subscribers``).

Subscribers are spread evenly over the configured host networks; SUPIs are the network's
PLMN id followed by a zero-padded index (``imsi-00101`` + 10 digits). In each network the
first ``small_cap_share`` of them are on a plan whose full-speed allowance is small enough
to be crossed in the middle of one benchmark session (throttle, so the PCF pushes a slower
session AMBR); the others are on a large "unlimited" plan they never use up in a run.
The load generator reads the same layout from the population file written here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo

from bench.indexes import ensure_all
from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.store.mongo import make_client
from nf.store.opwatch import OpWatch

MIB = 1024 * 1024
BRAND = "benchmark"
BIG_PLAN = "bench-unlimited"
SMALL_PLAN = "bench-small-cap"


def write_catalog(directory: Path, small_cap_mb: int) -> Path:
    """Write the benchmark brand's catalogue file; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{BRAND}.yaml").write_text(f"""\
# Written by the load benchmark (bench/seed.py) for one run.
brand:
  id: {BRAND}
  name: Benchmark Mobile
  block_final_unit_action: TERMINATE
offers:
- id: {BIG_PLAN}
  version: 1
  kind: plan
  name: 'Unlimited: 100 GB at full speed, then 512 kbps'
  price_cents: 3000
  period_days: 30
  allowance_mb: 102400
  speed: {{uplink_kbps: 50000, downlink_kbps: 200000}}
  at_cap:
    action: throttle
    throttle_speed: {{uplink_kbps: 128, downlink_kbps: 512}}
- id: {SMALL_PLAN}
  version: 1
  kind: plan
  name: 'Tiny: {small_cap_mb} MB at full speed, then 256 kbps'
  price_cents: 100
  period_days: 30
  allowance_mb: {small_cap_mb}
  speed: {{uplink_kbps: 50000, downlink_kbps: 200000}}
  at_cap:
    action: throttle
    throttle_speed: {{uplink_kbps: 64, downlink_kbps: 256}}
""", encoding="utf-8")
    return directory


def layout(settings: Settings, n: int, small_cap_share: float, small_cap_bytes: int
           ) -> list[dict[str, Any]]:
    """Groups of consecutive SUPIs: (network, plan) -> prefix, first index, count."""
    nets = settings.networks
    if not nets:
        raise ValueError("the configuration has no host networks")
    groups: list[dict[str, Any]] = []
    for i, net in enumerate(nets):
        count = n // len(nets) + (1 if i < n % len(nets) else 0)
        small = round(count * small_cap_share)
        plmn = net.plmn_ids[0]
        base = {"supi_prefix": f"imsi-{plmn}", "digits": 15 - len(plmn), "home_plmn": plmn,
                "network": net.id}
        if small:
            groups.append({**base, "first": 0, "count": small, "cap_bytes": small_cap_bytes,
                           "plan": SMALL_PLAN})
        if count - small:
            groups.append({**base, "first": small, "count": count - small, "cap_bytes": 0,
                           "plan": BIG_PLAN})
    return groups


def _subscribers(groups: list[dict[str, Any]]) -> Iterator[NewSubscriber]:
    for g in groups:
        for i in range(g["first"], g["first"] + g["count"]):
            supi = f"{g['supi_prefix']}{i:0{g['digits']}d}"
            yield NewSubscriber(supi=supi, brand=BRAND, home_network=g["network"],
                                gpsi=f"msisdn-1{supi[5:]}", plan_offer_id=g["plan"])


async def seed_population(settings: Settings, n: int, small_cap_share: float,
                          small_cap_bytes: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create ``n`` subscribers; returns (population file content, timing)."""
    if settings.catalog_dir is None:
        raise ValueError("catalog_dir must be set (see write_catalog)")
    groups = layout(settings, n, small_cap_share, small_cap_bytes)
    # Bulk loads are slow by nature: no slow-operation lines from this client.
    client = make_client(settings, OpWatch(slow_ms=600_000))
    try:
        db = client[settings.mongodb_database]
        ledger = MongoLedger(db, settings, CatalogHolder.from_dir(settings.catalog_dir))
        await ensure_all(settings, client[settings.mongodb_database])
        t0 = time.perf_counter()
        created = await ledger.bulk_create_subscribers(_subscribers(groups), datetime.now(UTC))
        seconds = time.perf_counter() - t0
        # The database's first read after a bulk load is slow (SecantusDB: seconds per
        # 100k documents, once); done here so that it is timed apart and not measured as
        # the NF's cold start. It may take longer than one operation may: it has the
        # start-up budget.
        t1 = time.perf_counter()
        first = next(_subscribers(groups[:1]))
        with pymongo.timeout(settings.mongodb_startup_timeout_s):
            found = await ledger.subscriber(first.supi, datetime.now(UTC))
        if found is None:
            raise RuntimeError(f"seeded subscriber {first.supi} is not found")
        first_read = time.perf_counter() - t1
    finally:
        await client.close()
    if created != n:
        raise RuntimeError(f"seeding created {created} subscribers, expected {n} "
                           "(is the database not empty?)")
    small = sum(g["count"] for g in groups if g["cap_bytes"])
    info = {"subscribers": created, "small_cap": small, "small_cap_bytes": small_cap_bytes,
            "seconds": round(seconds, 2), "per_s": round(created / seconds) if seconds else None,
            "first_read_s": round(first_read, 2),
            "function": "MongoLedger.bulk_create_subscribers"}
    return {"groups": groups}, info
