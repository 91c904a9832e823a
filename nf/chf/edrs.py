"""The one way the CHF stores an EDR: ``ChargingEdrs``. Every path builds its record with
``charging_edr`` and ends in ``settle`` (after a write that carried it) or ``store``.

An EDR rides the write whose money it records, so that a crash can never leave a charge
without its record or a record without its charge: it is a pending entry (``nf.effects``)
pushed by that very write and handed to a drain afterwards. That is why there are three
carriers, one per kind of write, and not one:

- the **wallet** (``Carrier.WALLET``): a create's and an update's step is one ledger
  write (``Ledger.charge_noted``); the session document is not written by an update, so
  the wallet's write is the only one the EDR can ride;
- the **session** document (``Carrier.SESSION``): a release closes the session there (the
  answer a retransmission gets), and an update whose subscriber is gone stores its
  session there, with no ledger write at all;
- **none** (``store``): a refused create and a close by supervision or a peer gone move
  no money with their record, so the EDR is stored in ``edrs`` before anything else.

Without a drain for a carrier, or when its write stored nothing, the EDR is stored
directly, before the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from nf.chf.core import Session
from nf.edr.port import EdrSink
from nf.edr.records import Party, UnitRecord, charging_record
from nf.effects import Drain, entry
from nf.store.mongo import Doc

# The kind of the EDR entries on the wallet, beside its counter changes (``nf.effects``).
WALLET_EDR = "edr"


class Carrier(Enum):
    WALLET = "wallet"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class PendingEdr:
    """An EDR and its pending entries for the write on ``carrier`` (none: no drain for
    it; the record is stored directly once the write is done)."""

    carrier: Carrier
    record: dict[str, Any]
    fx: tuple[Doc, ...]


def charging_edr(s: Session, event: str, now: datetime, isn: int | None, result: str,
                 units: Sequence[UnitRecord], record_id: str,
                 pdu_session_id: int | None = None) -> dict[str, Any]:
    party = Party(supi=s.supi, gpsi=s.gpsi, brand=s.brand, host_network=s.host_network,
                  serving_plmn=s.serving_plmn, roaming=s.roaming,
                  pdu_session_id=pdu_session_id, interface=s.interface)
    return charging_record(event=event, time=now, party=party, charging_data_ref=s.ref,
                           invocation_sequence_number=isn, result=result, units=units,
                           record_id=record_id)


class ChargingEdrs:
    """Where the CHF's EDRs go: ``sink`` (the ``edrs`` store), and the drains of the
    entries written on the session documents (``session``) and on the wallets
    (``wallet``)."""

    def __init__(self, sink: EdrSink, *, session: Drain[Doc] | None,
                 wallet: Drain[Doc] | None) -> None:
        self._sink = sink
        self._drains = {Carrier.SESSION: session, Carrier.WALLET: wallet}

    def pending(self, carrier: Carrier, record: dict[str, Any], now: datetime
                ) -> PendingEdr:
        """The EDR as a pending entry of the write on ``carrier`` (its id: the record's)."""
        if self._drains[carrier] is None:
            return PendingEdr(carrier, record, ())
        kind = WALLET_EDR if carrier is Carrier.WALLET else None
        return PendingEdr(carrier, record,
                          (entry(record, now, entry_id=str(record["_id"]), kind=kind),))

    async def settle(self, edr: PendingEdr, doc_id: str | None) -> None:
        """After the write: its entries to their drain (``doc_id``: the document that holds
        them); when the write stored nothing (None) or carried no entry, the EDR is
        stored now."""
        drain = self._drains[edr.carrier]
        if doc_id is not None and edr.fx and drain is not None:
            drain.hand_off(doc_id, edr.fx)
        else:
            await self.store(edr.record)

    async def store(self, record: dict[str, Any]) -> None:
        """Store the EDR now (no write carries it)."""
        await self._sink.write(record)
