"""The reports' port to the ledger: the one read they make of it (a subscriber's wallet, for
the caps and roaming reports). ``nf.wiring`` and the command line hand in the real ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from nf.ledger.state import Member, Wallet


class Wallets(Protocol):
    async def wallet(self, supi: str, now: datetime) -> tuple[Wallet, Member] | None: ...
