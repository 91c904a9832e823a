"""EDRs as durable effects (see ``nf.effects``): a service that stores its state writes
the EDR of a step as a pending entry of the same conditional update, and this drain stores
it in the ``edrs`` collection through the ``EdrSink`` after the answer has left, one insert
per batch of the drain (the records are durable already, so they skip the writer's
buffer). A record stored twice (a retry after a crash) keeps its ``_id``, so it is stored
once."""

from __future__ import annotations

from collections.abc import Sequence

from nf.edr.port import EdrSink
from nf.effects import Drain
from nf.runtime import Runtime
from nf.store.mongo import Doc


def edr_drain(rt: Runtime, collection: str, name: str, sink: EdrSink,
              kind: str | None = None) -> Drain[Doc]:
    """The drain for EDRs pending in ``collection``'s documents (``kind``: only the
    entries marked so, when the collection's entries are of several kinds)."""

    async def deliver(records: Sequence[Doc]) -> None:
        await sink.write_many(records)

    # Nobody waits for an EDR: one batch at a time, lingering for more, keeps them few and
    # large (each costs an insert and an acknowledgement).
    return Drain(rt, collection, name, decode=dict, deliver=deliver, kind=kind,
                 linger_s=rt.settings.effects.edr_linger_s, in_flight=1)
