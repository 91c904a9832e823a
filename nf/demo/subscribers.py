"""Demo subscribers: four per brand with deterministic SUPIs, and one family per brand.

For brand number ``i`` (0-8, in ``BRANDS`` order) on host network ``NETWORKS[i % 3]``:
``k=1`` has the capped plan, ``k=2`` the unlimited plan and a north-zone roaming pass,
``k=3`` owns the brand's family group (``<brand>-family``) and ``k=4`` is a member of it.
SUPI: ``imsi-`` + the network's PLMN id + the number ``4*i + k`` padded to 15 digits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from nf.catalog import Catalog, CatalogHolder
from nf.catalog.model import BasePlan, FamilyPlan
from nf.config import Settings
from nf.errors import Conflict
from nf.ledger.port import CounterChange, SubscriberView
from nf.ledger.subscribers import NewSubscriber

BRANDS = ("lumen", "harbor", "cartwheel", "nimbus", "pebble", "orbit", "tidal", "sprout",
          "quarry")
NETWORKS = ("northwind", "bluepeak", "redmoor")


class DemoLedger(Protocol):
    """What seeding the demo needs of the ledger (the command line hands in the real one)."""

    @property
    def catalog(self) -> CatalogHolder: ...

    async def ensure_indexes(self) -> None: ...

    async def create_subscriber(self, s: NewSubscriber, now: datetime) -> SubscriberView: ...

    async def purchase(self, supi: str, offer_id: str, now: datetime
                       ) -> tuple[CounterChange, ...]: ...

    async def create_group(self, owner: str, offer_id: str, now: datetime,
                           group_id: str | None = None) -> str: ...

    async def join_group(self, supi: str, group_id: str, now: datetime
                         ) -> tuple[CounterChange, ...]: ...


def demo_subscribers(settings: Settings, catalog: Catalog) -> list[dict[str, str | None]]:
    """Rows of (supi, gpsi, brand, network, plan, extra, group) for every demo subscriber."""
    rows: list[dict[str, str | None]] = []
    for i, brand in enumerate(BRANDS):
        net = settings.network(NETWORKS[i % 3])
        if net is None or catalog.brand(brand) is None:
            continue
        offers = catalog.offers_of(brand)
        capped = next(o.id for o in offers
                      if isinstance(o, BasePlan) and o.at_cap.action == "block")
        unlimited = next(o.id for o in offers
                         if isinstance(o, BasePlan) and o.at_cap.action == "throttle")
        family = next(o.id for o in offers if isinstance(o, FamilyPlan))
        passes = [o.id for o in offers if o.kind == "roaming_pass"]
        plmn = net.plmn_ids[0]
        for k in range(1, 5):
            n = 4 * i + k
            rows.append({
                "supi": f"imsi-{plmn}{n:0{15 - len(plmn)}d}",
                "gpsi": f"msisdn-1555{n:07d}",
                "brand": brand, "network": net.id,
                "plan": {1: capped, 2: unlimited}.get(k),
                "extra": passes[0] if k == 2 and passes else None,
                "family": family if k in (3, 4) else None,
                "group": f"{brand}-family" if k in (3, 4) else None,
                "role": {1: "capped", 2: "unlimited + roaming pass", 3: "family owner",
                         4: "family member"}[k],
            })
    return rows


async def seed_subscribers(ledger: DemoLedger, settings: Settings, now: datetime
                           ) -> dict[str, int]:
    """Create the demo subscribers and families; skips what already exists."""
    rows = demo_subscribers(settings, ledger.catalog.current)
    created = groups = 0
    for r in rows:
        supi = str(r["supi"])
        try:
            await ledger.create_subscriber(NewSubscriber(
                supi=supi, brand=str(r["brand"]), home_network=str(r["network"]),
                gpsi=r["gpsi"], plan_offer_id=r["plan"]), now)
        except Conflict:
            continue  # seeded before: leave it as it is
        created += 1
        if r["extra"]:
            await ledger.purchase(supi, str(r["extra"]), now)
        if r["group"]:
            gid = str(r["group"])
            if r["role"] == "family owner":
                try:
                    await ledger.create_group(supi, str(r["family"]), now, group_id=gid)
                    groups += 1
                except Conflict:
                    pass
            await ledger.join_group(supi, gid, now)
    return {"subscribers": len(rows), "subscribers_created": created,
            "family_groups_created": groups}
