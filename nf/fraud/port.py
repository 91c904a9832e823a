"""Fraud protection's port to the ledger: what it reads (a subscriber's wallet and status)
and the two ways it acts (a fraud speed, a suspension). ``nf.wiring`` hands in the real
ledger; the changes reach the PCF and the CHF as the ledger's counter changes."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from nf.ledger.port import CounterChange, Speed, SubscriberStatus, SubscriberView
from nf.ledger.state import Member, Wallet


class FraudLedger(Protocol):
    async def wallet(self, supi: str, now: datetime) -> tuple[Wallet, Member] | None: ...

    async def subscriber(self, supi: str, now: datetime) -> SubscriberView | None: ...

    async def set_status(self, supi: str, status: SubscriberStatus, now: datetime
                         ) -> tuple[CounterChange, ...]: ...

    async def set_fraud_speed(self, supi: str, fraud_speed: Speed | None, now: datetime
                              ) -> tuple[CounterChange, ...]: ...
