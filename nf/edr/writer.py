"""Group commit of EDRs into the ``edrs`` collection.

``write`` appends to a bounded in-memory buffer and waits; one flusher task takes up to
``batch_max`` records at a time and stores them with one ``insert_many``. Records that
arrive while a batch is being stored form the next batch, so under load each request waits
for about one insert and the database sees one round trip per batch, not per request.
Records with an ``_id`` already stored (a retransmission writing the same record again)
count as stored. On shutdown the buffer is flushed; a ``write`` after the flusher has
stopped stores its record directly.

A bad record never hurts its batch: if a batch cannot be encoded or the database refuses
some of its records, the others are stored (one by one if need be) and only the bad
records' writers get an error. Every writer waits at most ``edr.wait_timeout_s``; the
flusher itself never fails on a record.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson.errors import BSONError
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError
from quart import Blueprint

from nf.errors import Congestion, NfError, StoreUnavailable
from nf.runtime import Role, Runtime, Worker
from nf.store.mongo import Doc, money_collection, translate_errors

log = logging.getLogger("nf.edr")

COLLECTION = "edrs"
_DUPLICATE_KEY = 11000


@dataclass
class _Pending:
    doc: Doc
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    queued_at: float = 0.0  # the clock's monotonic time when it entered the buffer


class EdrWriter:
    """``nf.edr.port.EdrSink`` with group commit, and the ``Part`` (name ``edr``) whose
    worker flushes. Build one per process: ``EdrWriter(rt)``."""

    name = "edr"

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._cfg = rt.settings.edr
        self._coll = money_collection(rt.db, COLLECTION)
        self._buffer: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._running = False

    # -- the port -------------------------------------------------------------------------

    async def write(self, edr: Mapping[str, Any]) -> None:
        doc = dict(edr)  # built by nf.edr.records, which sets ``day`` from ``time``
        if not self._running:
            error = await self._store([_Pending(doc)], resolve=False)
            if error is not None:
                raise error
            return
        if len(self._buffer) >= self._cfg.buffer_max:
            raise Congestion(f"{len(self._buffer)} EDRs are waiting to be stored; retry later")
        item = _Pending(doc, queued_at=self._rt.clock.monotonic())
        self._buffer.append(item)
        self._rt.metrics.edr_buffered.inc()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(item.done), self._cfg.wait_timeout_s)
        except TimeoutError:
            # Still stored later if the database recovers (the id makes a retry's copy a
            # duplicate); nobody waits for the outcome any more.
            item.done.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise StoreUnavailable(
                f"the EDR was not stored within {self._cfg.wait_timeout_s:g} s") from None

    async def write_many(self, edrs: Sequence[Mapping[str, Any]]) -> None:
        """Store records that are already durable elsewhere (pending entries of the writes
        that made them, ``nf.edr.pending``): they join the buffer, so they share inserts
        with every other EDR of the process, and the caller waits for all of them at once
        (one wait, not one per record). Raises the first refused record's error (the
        drain then leaves the whole batch to its sweeper; records stored meanwhile are
        duplicates next time, which count as stored)."""
        docs = [dict(e) for e in edrs]
        if not docs:
            return
        if not self._running or len(self._buffer) + len(docs) > self._cfg.buffer_max:
            # No flusher, or no room: one insert of their own (they are durable anyway).
            errors = await self._insert(docs)
            self._count(d for i, d in enumerate(docs) if i not in errors)
            if errors:
                raise errors[min(errors)]
            return
        at = self._rt.clock.monotonic()
        items = [_Pending(d, queued_at=at) for d in docs]
        self._buffer.extend(items)
        self._rt.metrics.edr_buffered.inc(len(items))
        self._wake.set()
        futs = [it.done for it in items]
        _, pending = await asyncio.wait(futs, timeout=self._cfg.wait_timeout_s)
        for f in pending:  # still stored later if the database recovers
            f.add_done_callback(lambda f: f.cancelled() or f.exception())
        if pending:
            raise StoreUnavailable(
                f"{len(pending)} EDRs were not stored within {self._cfg.wait_timeout_s:g} s")
        for f in futs:
            err = f.exception()
            if err is not None:
                raise err

    def _count(self, docs: Iterable[Doc]) -> None:
        by_kind: dict[str, int] = {}
        for d in docs:
            k = str(d.get("kind", "other"))
            by_kind[k] = by_kind.get(k, 0) + 1
        for k, n in by_kind.items():
            self._rt.metrics.edrs.labels(k).inc(n)

    # -- the Part -------------------------------------------------------------------------

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        async with translate_errors("edr indexes"):
            await self._coll.create_index([("supi", ASCENDING), ("time", DESCENDING)],
                                          name="supi_time")
            await self._coll.create_index([("brand", ASCENDING), ("day", ASCENDING)],
                                          name="brand_day")
            await self._coll.create_index([("charging_data_ref", ASCENDING)],
                                          name="charging_data_ref", sparse=True)

    def workers(self) -> list[Worker]:
        return [self.run]

    async def run(self) -> None:
        """Flush batches until ``rt.stopping`` is set and the buffer is empty."""
        self._running = True
        stopping = self._rt.stopping
        try:
            while True:
                if not self._buffer:
                    if stopping.is_set():
                        break
                    await self._rt.wake_or_stop(self._wake)
                    continue
                await self.flush_once()
        finally:
            self._running = False
            # Anything appended between the last flush and now is stored directly.
            while self._buffer:
                await self.flush_once()

    async def flush_once(self) -> int:
        """Store one batch from the buffer; returns how many records it held."""
        n = min(len(self._buffer), self._cfg.batch_max)
        batch = [self._buffer.popleft() for _ in range(n)]
        self._rt.metrics.edr_buffered.dec(n)
        if batch:
            await self._store(batch)
            done, wait = self._rt.clock.monotonic(), self._rt.metrics.edr_wait
            for p in batch:
                wait.observe(max(0.0, done - p.queued_at))
        return n

    async def _store(self, batch: list[_Pending], *,
                     resolve: bool = True) -> NfError | None:
        """Store ``batch``; answer each waiter. Returns the first record's error, if any
        (for a single direct write). Never raises."""
        errors = await self._insert([p.doc for p in batch])
        for i, p in enumerate(batch):
            if not resolve or p.done.done():
                continue
            err = errors.get(i)
            if err is None:
                p.done.set_result(None)
            else:
                p.done.set_exception(err)
        self._count(p.doc for i, p in enumerate(batch) if i not in errors)
        return errors.get(0)

    async def _insert(self, batch: list[Doc]) -> dict[int, NfError]:
        """Insert; the records that could not be stored, by index in ``batch``."""
        refused: dict[int, NfError] = {}
        try:
            async with translate_errors("edr insert"):
                try:
                    await self._coll.insert_many(batch, ordered=False)
                except BulkWriteError as e:
                    if e.details.get("writeConcernErrors"):
                        raise
                    for x in e.details.get("writeErrors", []):
                        if x.get("code") != _DUPLICATE_KEY:
                            refused[int(x["index"])] = NfError(
                                f"the database refused the EDR (code {x.get('code')})")
                    if not e.details.get("writeErrors"):
                        raise
        except StoreUnavailable as e:
            log.error("EDR batch not stored", extra={"fields": {"records": len(batch),
                                                                "error": e.detail}})
            return dict.fromkeys(range(len(batch)), e)
        except (BSONError, OverflowError, ValueError, TypeError) as e:
            # A record that cannot be encoded: nothing of the batch was sent. Store the
            # records one by one so only the bad one fails.
            if len(batch) > 1:
                for i, p in enumerate(batch):
                    one = await self._insert([p])
                    if one:
                        refused[i] = one[0]
                return refused
            refused[0] = NfError(f"the EDR cannot be stored: {type(e).__name__}")
        except Exception as e:  # the flusher must never die on a record
            log.exception("EDR batch failed", extra={"fields": {"records": len(batch)}})
            return dict.fromkeys(range(len(batch)), NfError(
                f"the EDR was not stored: {type(e).__name__}"))
        for i, err in refused.items():
            log.error("EDR not stored", extra={"fields": {
                "error": err.detail, "edr_id": str(batch[i].get("_id")),
                "supi": batch[i].get("supi")}})
        return refused
