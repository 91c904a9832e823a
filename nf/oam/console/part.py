"""The console's part of the NF: its blueprints on the OAM port (the pages; the admin's
"sign out everyone of a brand" on the provisioning API), the audit and session indexes.

The subscriber page lists the notices sent to the subscriber and their fraud cases when
those parts are wired in and on (notices with a channel to send on; fraud protection
enabled), read through their own stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Blueprint

from nf.catalog import CatalogHolder
from nf.oam.console.data import ConsoleData
from nf.oam.console.sessions import ConsoleSessions
from nf.oam.port import CareLedger
from nf.runtime import Role, Runtime, Worker

if TYPE_CHECKING:
    from nf.fraud.part import FraudPart
    from nf.fraud.store import FraudStore
    from nf.subnotify.outbox import NoticeOutbox
    from nf.subnotify.part import SubNoticePart


class ConsolePart:
    name = "console"

    def __init__(self, rt: Runtime, ledger: CareLedger, catalog: CatalogHolder, *,
                 notices: SubNoticePart | None = None, fraud: FraudPart | None = None
                 ) -> None:
        self.rt = rt
        self.ledger = ledger
        self.catalog = catalog
        self.notices = notices
        self.fraud = fraud

    def notice_store(self) -> NoticeOutbox | None:
        n = self.notices
        return n.outbox if n is not None and n.active else None

    def fraud_store(self) -> FraudStore | None:
        f = self.fraud
        return f.service.store if f is not None and self.rt.settings.fraud.enabled else None

    def blueprints(self, role: Role) -> list[Blueprint]:
        if role != "oam" or not self.rt.settings.console.enabled:
            return []
        from nf.oam.console.admin import console_admin_blueprint
        from nf.oam.console.routes import console_blueprint

        return [console_blueprint(self.rt, self.ledger, self.catalog, self.sessions(),
                                  notices=self.notice_store(), fraud=self.fraud_store()),
                console_admin_blueprint(self.rt, self.sessions())]

    def sessions(self) -> ConsoleSessions:
        cfg = self.rt.settings.console
        return ConsoleSessions(self.rt.db, ttl_s=cfg.session_ttl_s,
                               idle_s=cfg.idle_timeout_s)

    async def ensure_indexes(self) -> None:
        await ConsoleData(self.rt).ensure_indexes()
        await self.sessions().ensure_indexes()

    def workers(self) -> list[Worker]:
        return []
