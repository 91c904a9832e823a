"""Effects that must survive a crash, kept as pending entries next to the state they
come from.

A write that produces an effect (a ledger step whose counter changes must reach the PCF and
the spending-limit subscribers; a charging step whose EDR must reach the ``edrs``
collection) pushes, in the same conditional update, one entry per effect into the
document's ``fx`` array::

    {"id": <unique>, "at": <when written>, "p": <the effect, encoded>[, "k": <kind>]}

Right after the write the caller hands the entries to this process's ``Drain``
(``hand_off``: no I/O, never blocks). The drain's worker delivers them in batches and then
pulls the delivered entries from their documents with one ``update_many``. Whatever a
process leaves behind (it died between the write and the pull, its queue was full, a
delivery failed) stays in the documents; every process's sweeper looks for entries older
than ``sweep_grace_s`` and delivers them. Delivery is therefore *at least once*: whoever
receives effects must tolerate receiving one twice.

Each kind of effect has its own drain (its own queue and worker), so a backlog of EDRs never
delays a throttle. Two kinds may share one collection's ``fx`` (a wallet's counter changes
and the EDRs of the charging steps written with them): the entries of the second kind carry
``"k"`` and each drain's sweeper asks the database only for documents holding its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pymongo import ASCENDING
from quart import Blueprint

from nf import logs
from nf.clock import utc
from nf.config import EffectsSettings
from nf.errors import NfError
from nf.runtime import Role, Runtime, Worker
from nf.store.mongo import Doc, money_collection, translate_errors

log = logging.getLogger("nf.effects")

T = TypeVar("T")
FIELD = "fx"
_DONE_MEMORY = 20_000  # ids of entries delivered lately (not to be written back)


def entry(payload: Doc, now: datetime, entry_id: str | None = None,
          kind: str | None = None) -> Doc:
    """A pending entry to push into a document's ``fx`` array (``kind``: for the drain
    built with that ``kind``, when several share the collection)."""
    e: Doc = {"id": entry_id or uuid.uuid4().hex, "at": now, "p": payload}
    if kind is not None:
        e["k"] = kind
    return e


@dataclass(frozen=True)
class _Item:
    doc_id: Any
    entry_id: str
    payload: Doc


class Drain(Generic[T]):
    """Delivers the pending entries of one collection. A ``Part`` (its workers: the
    delivery worker and the sweeper); build one per kind of effect and process. ``kind``:
    the entries' ``"k"`` this drain takes (None: entries without one)."""

    def __init__(self, rt: Runtime, collection: str, name: str, *,
                 decode: Callable[[Doc], T],
                 deliver: Callable[[Sequence[T]], Awaitable[None]],
                 settings: EffectsSettings | None = None, kind: str | None = None,
                 linger_s: float = 0.0, in_flight: int | None = None) -> None:
        self.name = name
        self.kind = kind
        # How long a batch that is not full waits for more entries before it goes: for
        # effects nobody waits for (EDRs), fewer and larger deliveries; 0 for the others.
        self._linger_s = linger_s
        self._rt = rt
        self._coll = money_collection(rt.db, collection)
        self._cfg = settings or rt.settings.effects
        # Batches delivered at once (default ``batches_in_flight``): effects that someone
        # waits for (a throttle) need several; for the others one means larger batches.
        self._in_flight = in_flight or self._cfg.batches_in_flight
        self._decode = decode
        self._deliver = deliver
        self._queue: deque[_Item] = deque()
        self._queued: set[str] = set()
        self._done: OrderedDict[str, None] = OrderedDict()
        self._busy: dict[Any, int] = {}  # documents of batches in flight: their effects
        self._wake = asyncio.Event()

    # -- what writers call ----------------------------------------------------------------

    def hand_off(self, doc_id: Any, entries: Sequence[Doc]) -> None:
        """Entries just written into document ``doc_id``: deliver them soon. Past the queue
        bound (or with immediate delivery off) they wait for the sweeper."""
        if not self._cfg.immediate:
            return
        for e in entries:
            if len(self._queue) >= self._cfg.queue_max:
                self._rt.metrics.effects_overflow.labels(self.name).inc()
                return
            if e["id"] in self._queued:
                continue
            self._queue.append(_Item(doc_id, e["id"], e["p"]))
            self._queued.add(e["id"])
        self._wake.set()

    def unsettled(self, entries: Sequence[Doc]) -> list[Doc]:
        """``entries`` without those this process delivered lately (for writers that copy
        a document's pending entries into its replacement)."""
        return [e for e in entries if e.get("id") not in self._done]

    # -- the Part -------------------------------------------------------------------------

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        async with translate_errors("pending effects index"):
            await self._coll.create_index([(f"{FIELD}.at", ASCENDING)],
                                          name=f"{FIELD}_at", sparse=True)

    def workers(self) -> list[Worker]:
        return [self.run, self.sweep]

    async def run(self) -> None:
        """Deliver what is handed off, in batches, until stopping (then flush). Up to
        ``batches_in_flight`` batches are delivered at once, so an effect handed off while
        a batch is being delivered (a throttle behind a batch of EDRs or usage marks) does
        not wait for it; the effects of one document stay in order (a batch takes none of
        a document that a batch in flight holds)."""
        stopping = self._rt.stopping
        slots = asyncio.Semaphore(self._in_flight)
        async with asyncio.TaskGroup() as tg:
            while True:
                if not self._queue:
                    if stopping.is_set():
                        return
                    await self._rt.wake_or_stop(self._wake)
                    continue
                if self._linger_s > 0 and len(self._queue) < self._cfg.batch_max \
                        and not stopping.is_set():
                    await asyncio.sleep(self._linger_s)  # a batching pause, not business time
                await slots.acquire()
                batch = self._take()
                if not batch:  # all that is queued waits behind batches in flight
                    slots.release()
                    # Woken when one of them finishes (even when stopping: what is queued
                    # still goes). No await since ``_take``, so that wake-up is not missed.
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                tg.create_task(self._deliver_batch(batch, slots))

    def _take(self) -> list[_Item]:
        """The next batch: queued effects, in order, of documents no batch in flight holds
        (the others stay queued, in order)."""
        batch: list[_Item] = []
        kept: deque[_Item] = deque()
        busy = self._busy
        while self._queue and len(batch) < self._cfg.batch_max:
            it = self._queue.popleft()
            if it.doc_id in busy:
                kept.append(it)
            else:
                batch.append(it)
        self._queue.extendleft(reversed(kept))
        for it in batch:
            busy[it.doc_id] = busy.get(it.doc_id, 0) + 1
        return batch

    async def _deliver_batch(self, batch: list[_Item], slots: asyncio.Semaphore) -> None:
        try:
            await self._settle(batch)
        finally:
            for it in batch:
                self._queued.discard(it.entry_id)
                left = self._busy[it.doc_id] - 1
                if left:
                    self._busy[it.doc_id] = left
                else:
                    del self._busy[it.doc_id]
            slots.release()
            self._wake.set()  # what waited behind this batch may go now

    async def flush(self) -> int:
        """Deliver everything handed off so far, now; returns how many entries."""
        n = 0
        while self._queue:
            n += await self._next_batch()
        return n

    async def _next_batch(self) -> int:
        n = min(len(self._queue), self._cfg.batch_max)
        batch = [self._queue.popleft() for _ in range(n)]
        try:
            await self._settle(batch)
        finally:
            for it in batch:
                self._queued.discard(it.entry_id)
        return n

    async def sweep(self) -> None:
        """Take over entries left pending longer than the grace time, every interval."""
        while not self._rt.stopping.is_set():
            await self._rt.pause(self._cfg.sweep_interval_s)
            if self._rt.stopping.is_set():
                return
            try:
                found = await self.sweep_once()
            except NfError as e:
                logs.log(log, logging.WARNING, "pending effects sweep failed",
                         effect=self.name, cause=e.cause, detail=e.detail)
                continue
            if found:
                logs.log(log, logging.INFO, "pending effects taken over", effect=self.name,
                         entries=found)

    async def sweep_once(self) -> int:
        """Deliver pending entries older than the grace time; returns how many."""
        cutoff = self._rt.clock.now() - timedelta(seconds=self._cfg.sweep_grace_s)
        # Only documents holding an overdue entry of this drain's kind (``"k": None`` also
        # matches entries without one): a backlog of another kind never fills the batch.
        mine = {f"{FIELD}": {"$elemMatch": {"at": {"$lte": cutoff}, "k": self.kind}}}
        async with translate_errors("pending effects sweep"):
            docs = [d async for d in self._coll.find(
                mine, {FIELD: 1}).limit(self._cfg.sweep_batch)]
        late = [(d["_id"], e) for d in docs for e in d.get(FIELD) or ()
                if e.get("at") is not None and utc(e["at"]) <= cutoff
                and e.get("k") == self.kind and e["id"] not in self._queued]
        # The backlog's age: what the sweeper finds is what immediate delivery missed.
        oldest = min((utc(e["at"]) for _, e in late), default=None)
        self._rt.metrics.effects_oldest.labels(self.name).set(
            0.0 if oldest is None else (self._rt.clock.now() - oldest).total_seconds())
        items = [_Item(doc_id, e["id"], e["p"]) for doc_id, e in late]
        for i in range(0, len(items), self._cfg.batch_max):
            await self._settle(items[i:i + self._cfg.batch_max])
        return len(items)

    # -- delivery -------------------------------------------------------------------------

    async def _settle(self, batch: list[_Item]) -> None:
        """Deliver one batch and acknowledge it; on failure leave it to the sweeper."""
        try:
            await self._deliver([self._decode(it.payload) for it in batch])
            async with translate_errors("pending effects acknowledgement"):
                await self._coll.update_many(
                    {"_id": {"$in": list({it.doc_id: None for it in batch})}},
                    {"$pull": {FIELD: {"id": {"$in": [it.entry_id for it in batch]}}}})
        except NfError as e:
            self._rt.metrics.effects_failed.labels(self.name).inc(len(batch))
            logs.log(log, logging.WARNING, "effects not delivered; the sweeper retries",
                     effect=self.name, entries=len(batch), cause=e.cause, detail=e.detail)
            return
        self._rt.metrics.effects_delivered.labels(self.name).inc(len(batch))
        for it in batch:
            self._done[it.entry_id] = None
        while len(self._done) > _DONE_MEMORY:
            self._done.popitem(last=False)
