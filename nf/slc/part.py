"""The spending-limit slice's ``Part``: its SBI blueprint and index. Counter changes reach it
through the ledger's pending effects, which retry a failed delivery (no backlog here)."""

from __future__ import annotations

from collections.abc import Sequence

from quart import Blueprint

from nf.ledger.port import CounterChange, Ledger
from nf.notify.port import Outbox
from nf.runtime import Role, Runtime, Worker
from nf.slc.http import slc_blueprint
from nf.slc.service import SlcService


class SlcPart:
    """Nchf_SpendingLimitControl on the SBI port; a ``CounterListener`` like the PCF."""

    name = "slc"

    def __init__(self, rt: Runtime, *, ledger: Ledger, outbox: Outbox) -> None:
        self._rt = rt
        self.service = SlcService(rt.db, rt.clock, ledger, outbox)

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        await self.service.counters_changed(changes)

    def blueprints(self, role: Role) -> list[Blueprint]:
        return [slc_blueprint(self._rt.settings, self.service)] if role == "sbi" else []

    async def ensure_indexes(self) -> None:
        await self.service.ensure_indexes()

    def workers(self) -> list[Worker]:
        return []
