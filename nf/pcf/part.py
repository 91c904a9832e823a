"""The PCF's ``Part``: its SBI blueprint, its indexes and its revalidation worker."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from quart import Blueprint

from nf import logs
from nf.edr.port import EdrSink
from nf.errors import NfError
from nf.ledger.port import CounterChange, Ledger
from nf.notify.policy import Outcome
from nf.notify.port import Outbox
from nf.pcf.http import pcf_blueprint, pcf_routes
from nf.pcf.service import KIND_UPDATE, SPEED_EVENTS, PcfService
from nf.pcf.store import PolicyStore
from nf.runtime import Role, Runtime, Worker
from nf.sbi.direct import Route

log = logging.getLogger("nf.pcf")

# How often policies whose revalidation time passed (a boost ending) are looked for.
REVALIDATE_INTERVAL_S = 1.0


class PcfPart:
    """Npcf_SMPolicyControl on the SBI port; a ``CounterListener`` for the ledger's changes.

    Append it to ``rt.counter_listeners`` so cap crossings, purchases, renewals and status
    changes reach every active SM policy of the subscriber."""

    name = "pcf"

    def __init__(self, rt: Runtime, *, ledger: Ledger, outbox: Outbox, edrs: EdrSink) -> None:
        self._rt = rt
        self.store = PolicyStore(rt.db)
        speed = rt.metrics.policy_speed_changes
        # Shown at 0 from the start: rates and increases then count the first event too.
        for event in SPEED_EVENTS:
            speed.labels(event)
        for outcome in Outcome:
            rt.metrics.notifications.labels(KIND_UPDATE, outcome.value)
        rt.metrics.notification_latency.labels(KIND_UPDATE)
        self.service = PcfService(rt.settings, rt.clock, self.store, ledger, outbox, edrs,
                                  speed_changed=lambda event: speed.labels(event).inc())

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        await self.service.counters_changed(changes)

    def blueprints(self, role: Role) -> list[Blueprint]:
        return [pcf_blueprint(self._rt.settings, self.service)] if role == "sbi" else []

    def direct_routes(self, role: str) -> list[Route]:
        """The operations the SBI's direct path serves (``nf.sbi.direct``)."""
        return pcf_routes(self._rt.settings, self.service) if role == "sbi" else []

    async def ensure_indexes(self) -> None:
        await self.store.ensure_indexes()

    def workers(self) -> list[Worker]:
        return [self._revalidate]

    async def _revalidate(self) -> None:
        stopping = self._rt.stopping
        while not stopping.is_set():
            try:
                await self.service.resend_owed()
                await self.service.revalidate_due()
            except NfError as e:
                logs.log(log, logging.WARNING, "revalidation pass failed", cause=e.cause,
                         detail=e.detail)
            await self._rt.pause(REVALIDATE_INTERVAL_S)
