"""The CHF's part of the NF: its blueprint, indexes, supervision worker and the counter
listener that turns purchases and blocks into notifications towards SMFs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from quart import Blueprint

from nf import logs
from nf.chf.http import chf_blueprint, chf_routes
from nf.chf.service import KIND_ABORT, KIND_REAUTH, WALLET_EDR, ChargingService
from nf.chf.store import COLLECTION, SessionStore
from nf.edr.pending import edr_drain
from nf.edr.port import EdrSink
from nf.errors import NfError
from nf.ledger.effects import WALLETS
from nf.ledger.port import CounterChange, Ledger
from nf.notify.port import Outbox
from nf.runtime import Role, Runtime, Worker
from nf.sbi.direct import Route

log = logging.getLogger("nf.chf")


class ChfPart:
    """Build with ``ChfPart(rt, ledger=..., outbox=..., edrs=...)`` and register it on
    ``rt.counter_listeners``."""

    name = "chf"

    def __init__(self, rt: Runtime, *, ledger: Ledger, outbox: Outbox,
                 edrs: EdrSink) -> None:
        self._rt = rt
        self.store = SessionStore(rt.db, rt.settings.chf.session_cache_size)
        # EDRs of charging steps: pending entries of the session writes, stored after the
        # answer has left (and after a crash, by any process's sweeper).
        self.edr_fx = edr_drain(rt, COLLECTION, "chf_edrs", edrs)
        # EDRs of creates and updates: pending entries of the ledger's write on the wallet.
        self.wallet_edr_fx = edr_drain(rt, WALLETS, "chf_update_edrs", edrs, kind=WALLET_EDR)
        self.service = ChargingService(rt, ledger=ledger, outbox=outbox, edrs=edrs,
                                       store=self.store, pending_edrs=self.edr_fx,
                                       wallet_edrs=self.wallet_edr_fx)
        outbox.on_gone(KIND_REAUTH, self.service.peer_gone)
        outbox.on_gone(KIND_ABORT, self.service.peer_gone)

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        await self.service.counters_changed(changes)

    def blueprints(self, role: Role) -> list[Blueprint]:
        return [chf_blueprint(self._rt.settings, self.service)] if role == "sbi" else []

    def direct_routes(self, role: str) -> list[Route]:
        """The operations the SBI's direct path serves (``nf.sbi.direct``)."""
        return chf_routes(self._rt.settings, self.service) if role == "sbi" else []

    async def ensure_indexes(self) -> None:
        await self.store.ensure_indexes()
        await self.edr_fx.ensure_indexes()
        await self.wallet_edr_fx.ensure_indexes()

    def workers(self) -> list[Worker]:
        return [self._supervise, *self.edr_fx.workers(), *self.wallet_edr_fx.workers()]

    async def _supervise(self) -> None:
        """Close sessions the SMF stopped reporting on (every process runs this; closing is
        a conditional update, so each session is closed once)."""
        stopping = self._rt.stopping
        interval = self._rt.settings.chf.supervision_sweep_interval_s
        while not stopping.is_set():
            try:
                closed = await self.service.supervise_once()
                if closed:
                    logs.log(log, logging.INFO, "supervision closed sessions", closed=closed)
            except NfError as e:
                logs.log(log, logging.WARNING, "supervision pass failed", cause=e.cause,
                         detail=e.detail)
            await self._rt.pause(interval)
