"""The demo dataset for `make run`: 9 fictional brands on 3 fictional host networks.

Configuration is ``nf/demo/nf.yaml``; offers live in ``nf/demo/catalog/`` (one file per
brand). ``seed`` is idempotent: running it twice leaves the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.store.mongo import Db, make_client

if TYPE_CHECKING:
    from nf.demo.subscribers import DemoLedger

DEMO_CONFIG = Path(__file__).parent / "nf.yaml"

# Builds the ledger on the demo's database: ``nf.ledger.mongo.MongoLedger`` itself.
LedgerOf = Callable[[Db, Settings, CatalogHolder], "DemoLedger"]


async def seed(settings: Settings, ledger_of: LedgerOf) -> dict[str, int]:
    """Load the demo dataset into the configured database (subscribers and families through
    the ledger ``ledger_of`` builds); returns counts by kind."""
    client = make_client(settings)
    try:
        db = client[settings.mongodb_database]
        counts: dict[str, int] = {}
        nets = db["host_networks"]
        for n in settings.networks:
            await nets.replace_one({"_id": n.id}, {"_id": n.id, **n.model_dump()},
                                   upsert=True)
        counts["host_networks"] = len(settings.networks)
        if settings.catalog_dir is not None:
            from nf.clock import SystemClock
            from nf.demo.subscribers import seed_subscribers

            ledger = ledger_of(db, settings, CatalogHolder.from_dir(settings.catalog_dir))
            await ledger.ensure_indexes()
            counts.update(await seed_subscribers(ledger, settings, SystemClock().now()))
        return counts
    finally:
        await client.close()
