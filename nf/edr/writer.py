"""Group commit of EDRs into the ``edrs`` collection.

``write`` appends to a bounded in-memory buffer and waits; one flusher task takes up to
``batch_max`` records at a time and stores them with one ``insert_many``. Records that
arrive while a batch is being stored form the next batch, so under load each request waits
for about one insert and the database sees one round trip per batch, not per request.
Records with an ``_id`` already stored (a retransmission writing the same record again)
count as stored. On shutdown the buffer is flushed; a ``write`` after the flusher has
stopped stores its record directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError
from quart import Blueprint

from nf.errors import Congestion, StoreUnavailable
from nf.runtime import Role, Runtime, Worker
from nf.store.mongo import Doc, translate_errors

log = logging.getLogger("nf.edr")

COLLECTION = "edrs"
_DUPLICATE_KEY = 11000


@dataclass
class _Pending:
    doc: Doc
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class EdrWriter:
    """``nf.edr.port.EdrSink`` with group commit, and the ``Part`` (name ``edr``) whose
    worker flushes. Build one per process: ``EdrWriter(rt)``."""

    name = "edr"

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._cfg = rt.settings.edr
        self._coll = rt.db[COLLECTION]
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
        item = _Pending(doc)
        self._buffer.append(item)
        self._rt.metrics.edr_buffered.inc()
        self._wake.set()
        await asyncio.shield(item.done)

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
                    self._wake.clear()
                    waits = [asyncio.ensure_future(self._wake.wait()),
                             asyncio.ensure_future(stopping.wait())]
                    try:
                        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for w in waits:
                            w.cancel()
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
        return n

    async def _store(self, batch: list[_Pending], *,
                     resolve: bool = True) -> StoreUnavailable | None:
        error: StoreUnavailable | None = None
        try:
            async with translate_errors("edr insert"):
                try:
                    await self._coll.insert_many([p.doc for p in batch], ordered=False)
                except BulkWriteError as e:
                    errs = e.details.get("writeErrors", [])
                    if not errs or any(x.get("code") != _DUPLICATE_KEY for x in errs):
                        raise
        except StoreUnavailable as e:
            log.error("EDR batch not stored", extra={"fields": {"records": len(batch),
                                                                "error": e.detail}})
            error = e
        for p in batch:
            if not resolve or p.done.done():
                continue
            if error is None:
                p.done.set_result(None)
            else:
                p.done.set_exception(error)
        if error is None:
            for p in batch:
                self._rt.metrics.edrs.labels(str(p.doc.get("kind", "other"))).inc()
        return error
