"""The care side's port to the ledger: what the provisioning API and the care console read
and change (subscribers, their wallets and balances, family groups, purchases, status).
``nf.wiring`` hands in the real ledger; every change it makes reaches the PCF and the CHF
as the ledger's counter changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from nf.ledger.port import BalanceView, CounterChange, SubscriberStatus, SubscriberView
from nf.ledger.state import Member, Wallet
from nf.ledger.subscribers import NewSubscriber


class CareLedger(Protocol):
    async def wallet(self, supi: str, now: datetime) -> tuple[Wallet, Member] | None: ...

    async def subscriber(self, supi: str, now: datetime) -> SubscriberView | None: ...

    async def balance(self, supi: str, now: datetime) -> BalanceView | None: ...

    async def group(self, group_id: str, now: datetime) -> Wallet | None: ...

    async def session_notes(self, supi: str, now: datetime) -> dict[str, Any]: ...

    async def create_subscriber(self, s: NewSubscriber, now: datetime) -> SubscriberView: ...

    async def delete_subscriber(self, supi: str, now: datetime) -> bool: ...

    async def set_status(self, supi: str, status: SubscriberStatus, now: datetime
                         ) -> tuple[CounterChange, ...]: ...

    async def purchase(self, supi: str, offer_id: str, now: datetime
                       ) -> tuple[CounterChange, ...]: ...

    async def create_group(self, owner: str, offer_id: str, now: datetime,
                           group_id: str | None = None, *, bought: bool = False) -> str: ...

    async def join_group(self, supi: str, group_id: str, now: datetime,
                         cap_bytes: int | None = None) -> tuple[CounterChange, ...]: ...

    async def leave_group(self, supi: str, now: datetime) -> tuple[CounterChange, ...]: ...
