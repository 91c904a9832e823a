"""The console's part of the NF: its blueprint on the OAM port and the audit index."""

from __future__ import annotations

from quart import Blueprint

from nf.ledger.part import LedgerPart
from nf.oam.console.data import ConsoleData
from nf.runtime import Role, Runtime, Worker


class ConsolePart:
    name = "console"

    def __init__(self, rt: Runtime, ledger_part: LedgerPart) -> None:
        self.rt = rt
        self.ledger_part = ledger_part

    def blueprints(self, role: Role) -> list[Blueprint]:
        if role != "oam" or not self.rt.settings.console.enabled:
            return []
        from nf.oam.console.routes import console_blueprint

        return [console_blueprint(self.rt, self.ledger_part.ledger,
                                  self.ledger_part.catalog)]

    async def ensure_indexes(self) -> None:
        await ConsoleData(self.rt).ensure_indexes()

    def workers(self) -> list[Worker]:
        return []
