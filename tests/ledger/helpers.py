"""Building a ledger and test subscribers, for any test that needs a balance.

Two catalogues:
- the demo catalogue (``settings.catalog_dir`` in tests/data/nf-test.yaml, what
  ``create_app`` loads): brand ``lumen`` has ``lumen-capped-2gb`` (2 GiB, block),
  ``lumen-unlimited`` (15 GiB then 128 kbps), ``lumen-family-30gb``, ``lumen-roam-north-1gb-1d``;
- ``TEST_CATALOG`` here: small numbers (MiB) for brand ``testco`` (see catalog/testco.yaml).

Every helper takes ``now`` (use the ``clock`` fixture's ``clock.now()``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.ledger.port import ChargeOutcome, ChargeStep
from nf.store.mongo import Db

TEST_CATALOG = Path(__file__).parent / "catalog"
MIB = 1024 * 1024
HOME_PLMN = "00101"  # northwind, the home network used below
NORTH_ZONE_PLMN = "99970"  # a visited network in the roaming passes' "north zone"

# Demo offers of brand lumen (the catalogue create_app loads in tests).
DEMO_CAPPED = "lumen-capped-2gb"
DEMO_UNLIMITED = "lumen-unlimited"
DEMO_FAMILY = "lumen-family-30gb"
DEMO_ROAMING_PASS = "lumen-roam-north-1gb-1d"
DEMO_ADDON = "lumen-addon-1gb-7d"
DEMO_BOOST = "lumen-boost-1h"


def make_ledger(db: Db, settings: Settings, catalog_dir: Path | None = None, *,
                local_locks: bool = True) -> MongoLedger:
    """A ledger over ``db``; the demo catalogue unless ``catalog_dir`` (e.g. TEST_CATALOG)."""
    d = catalog_dir or settings.catalog_dir
    assert d is not None
    return MongoLedger(db, settings, CatalogHolder.from_dir(d), local_locks=local_locks)


async def subscriber(ledger: MongoLedger, now: datetime, supi: str, plan: str | None,
                     brand: str = "lumen", network: str = "northwind",
                     gpsi: str | None = None) -> str:
    await ledger.create_subscriber(
        NewSubscriber(supi=supi, brand=brand, home_network=network, gpsi=gpsi,
                      plan_offer_id=plan), now)
    return supi


async def capped(ledger: MongoLedger, now: datetime, supi: str, brand: str = "lumen",
                 plan: str = DEMO_CAPPED) -> str:
    """A subscriber whose plan blocks at the cap."""
    return await subscriber(ledger, now, supi, plan, brand)


async def unlimited(ledger: MongoLedger, now: datetime, supi: str, brand: str = "lumen",
                    plan: str = DEMO_UNLIMITED) -> str:
    """A subscriber whose plan throttles after the full-speed allowance."""
    return await subscriber(ledger, now, supi, plan, brand)


async def family(ledger: MongoLedger, now: datetime, owner: str, members: list[str],
                 brand: str = "lumen", offer: str = DEMO_FAMILY) -> str:
    """A family group bought by ``owner`` (created without a plan) with ``members`` joined;
    returns the group id."""
    await subscriber(ledger, now, owner, None, brand)
    gid = await ledger.create_group(owner, offer, now)
    await ledger.join_group(owner, gid, now)
    for m in members:
        await subscriber(ledger, now, m, None, brand)
        await ledger.join_group(m, gid, now)
    return gid


async def with_roaming_pass(ledger: MongoLedger, now: datetime, supi: str,
                            offer: str = DEMO_ROAMING_PASS) -> str:
    await ledger.purchase(supi, offer, now)
    return supi


def step(supi: str, now: datetime, *, used: int = 0, requested: int = 0,
         session: str = "s1", rg: int = 10, plmn: str = HOME_PLMN, ttl_s: int = 300,
         seq: int = 0) -> ChargeStep:
    """One step of ``session``; ``seq`` is its invocation sequence number (a step with the
    same (session, rating group, seq) as an earlier one is a retry of it)."""
    return ChargeStep(supi=supi, session_id=session, rating_group=rg, serving_plmn=plmn,
                      used_bytes=used, requested_bytes=requested, sequence=seq,
                      reservation_expires_at=now + timedelta(seconds=ttl_s), now=now)


async def charge(ledger: MongoLedger, supi: str, now: datetime, **kw: object
                 ) -> ChargeOutcome:
    return await ledger.charge(step(supi, now, **kw))  # type: ignore[arg-type]
