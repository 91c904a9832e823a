"""The ledger's part of the NF: the provisioning API on the OAM port, indexes, sweepers,
and the delivery of counter changes to ``rt.counter_listeners`` (``nf.ledger.effects``)."""

from __future__ import annotations

import logging
import random

from quart import Blueprint

from nf import logs
from nf.catalog import CatalogHolder
from nf.edr.port import EdrSink
from nf.ledger.effects import counter_drain
from nf.ledger.mongo import MongoLedger
from nf.runtime import Role, Runtime, Worker

log = logging.getLogger("nf.ledger")


class LedgerPart:
    """Builds the ``MongoLedger`` (``.ledger``) and the catalogue (``.catalog``) that the
    CHF, the PCF and the provisioning API share."""

    name = "ledger"

    def __init__(self, rt: Runtime, catalog: CatalogHolder | None = None,
                 edrs: EdrSink | None = None) -> None:
        self.rt = rt
        self.edrs = edrs  # purchases and status changes are recorded when given
        if catalog is None:
            d = rt.settings.catalog_dir
            catalog = CatalogHolder.from_dir(d) if d is not None else CatalogHolder.empty()
        self.catalog = catalog
        # Every counter change the ledger writes reaches every listener of the runtime,
        # at least once, even across a crash.
        self.effects = counter_drain(rt)
        self.ledger = MongoLedger(rt.db, rt.settings, catalog, metrics=rt.metrics,
                                  effects=self.effects, clock=rt.clock)

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        await self.ledger.ensure_indexes()
        await self.effects.ensure_indexes()

    def workers(self) -> list[Worker]:
        cfg = self.rt.settings.ledger
        return [self._sweeper("res", cfg.reservation_sweep_interval_s),
                self._sweeper("life", cfg.renewal_sweep_interval_s), *self.effects.workers(),
                self._writes]

    async def _writes(self) -> None:
        await self.ledger.run_writes(self.rt.stopping)

    def _sweeper(self, which: str, interval_s: float) -> Worker:
        rt, ledger, batch = self.rt, self.ledger, self.rt.settings.ledger.sweep_batch

        async def run() -> None:
            # The first round waits a random part of the interval: the sweepers of several
            # processes (and instances) started together do not all scan at once.
            await rt.pause(random.uniform(0.1, 1.0) * min(interval_s, 5.0))
            while not rt.stopping.is_set():
                # The changes are delivered by the effects drain (written with the sweep).
                changes = await ledger.sweep_due(which, rt.clock.now(), batch)
                if changes:
                    logs.log(log, logging.DEBUG, "ledger sweep", which=which,
                             changes=len(changes))
                await rt.pause(interval_s)

        return run
