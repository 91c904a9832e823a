"""What the PCF reads of a subscriber before it decides: one read of the subscriber's
balance on the ledger, made into the core's ``Subscriber`` (with the zones its roaming
passes cover when a serving PLMN is visited), and handed on with the decision
(``Decided``) so that a Diameter caller arming usage monitoring need not read it again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nf.config import Settings
from nf.ledger import roaming
from nf.ledger.port import BalanceView, Ledger
from nf.pcf.core import Subscriber


@dataclass(frozen=True)
class Decided:
    """A decision, the resource it belongs to and the subscriber's balance as read for it
    (None: no such subscriber)."""

    resource_uri: str
    decision: dict[str, Any]
    balance: BalanceView | None


async def subscriber(settings: Settings, ledger: Ledger, supi: str,
                     plmns: Sequence[str | None], now: datetime
                     ) -> tuple[Subscriber | None, BalanceView | None]:
    """The subscriber as the core needs it, and the balance it was made of."""
    balance = await ledger.balance(supi, now)
    if balance is None:
        return None, None
    view = balance.subscriber
    home = roaming.home_plmns(settings, view.home_network, view.home_plmn)
    sub = Subscriber(view=view, home_plmns=home)
    if not any(sub.roaming_at(p) for p in plmns):
        return sub, balance
    # Roaming: which zones do the subscriber's valid passes with quota left cover.
    zones = roaming.pass_zones(balance.buckets, now)
    return Subscriber(view=view, home_plmns=home, pass_zones=zones), balance
