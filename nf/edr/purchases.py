"""Purchase EDRs, written from the ledger's durable counter changes.

A purchase (provisioning, care, the console) is one conditional wallet write; the
counter change it causes carries a ``PurchaseMark`` (what was bought, at which terms) as a
pending entry of that same write (``nf.ledger.effects``). This listener turns each mark
into the purchase EDR. So a process that dies right after the purchase still leaves the
EDR to whoever sweeps the pending entry, and a purchase is never recorded twice: the
record's id is made from the subscriber and the bucket (or the offer and the time), and
the EDR writer skips an id already stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from nf.edr.port import EdrSink
from nf.edr.records import Party, purchase_record
from nf.ledger.port import CounterChange, Ledger, PurchaseMark


def purchase_id(supi: str, mark: PurchaseMark) -> str:
    if mark.bucket_id:
        return f"buy:{supi}:{mark.bucket_id}"
    return f"buy:{supi}:{mark.offer_id}:{mark.at.isoformat()}"


class PurchaseEdrs:
    """A ``CounterListener`` (append it to ``rt.counter_listeners``)."""

    def __init__(self, ledger: Ledger, sink: EdrSink) -> None:
        self._ledger = ledger
        self._sink = sink

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        for c in changes:
            mark = c.purchase
            if mark is None:
                continue
            # Who bought it: gpsi, brand and host network as they are now (a subscriber
            # removed since is recorded by SUPI alone).
            view = await self._ledger.subscriber(c.supi, mark.at)
            party = Party(supi=c.supi) if view is None else Party(
                supi=c.supi, gpsi=view.gpsi, brand=view.brand, host_network=view.home_network)
            # A failure (the buffer full, the database away) raises: the whole batch stays
            # pending and is delivered again, to every listener.
            await self._sink.write(purchase_record(
                time=mark.at, party=party, offer_id=mark.offer_id,
                offer_version=mark.offer_version, offer_kind=mark.kind,
                price_cents=mark.price_cents, currency=mark.currency,
                bucket_ids=[mark.bucket_id] if mark.bucket_id else [],
                zone_name=mark.zone_name, record_id=purchase_id(c.supi, mark)))
