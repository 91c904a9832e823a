"""Group commit of conditional single-document updates: many requests, one ``bulk_write``.

A write on the money path is one conditional ``update_one({_id, v: version}, …)`` (see
``nf.ledger.repo``). Sent one by one, each pays the driver's whole fixed cost (session,
server selection, connection checkout, command framing, timeouts): most of the client CPU
of an update. ``UpdateBatcher`` lets the updates that become ready in the same turn of the
event loop (or while earlier batches are in flight) travel together as one unordered
``bulk_write``, and answers each caller on its own.

Which update of a batch landed: a batch reports only how many documents matched in all. When
that is every update, each landed. Otherwise each update carries a *token* (a random number
it sets in the document's ``w`` field), and one read of the batch's documents tells which
tokens are there: an update whose token is there landed. One whose token is not there did
not land, or landed and was overwritten since by another writer; the caller is told it did
not land, reads the document again and decides again. That is safe only for updates that a
second decision recognises as done (the ledger's charging steps, idempotent by their
sequence numbers), which are the only ones sent through here.

A failure of the batch (database unreachable, timeout) fails every update of it with
``StoreUnavailable``, as a single update would have failed: the caller cannot tell whether
it landed, and answers so.

Bounded: at most ``batch_max`` updates per batch, ``in_flight_max`` batches at once, and
``queue_max`` updates waiting (past it, ``update`` answers ``Congestion`` at once). The
worker (``run``) belongs to the lifespan of the app; without it (tools, tests that build
the ledger alone) ``update`` writes directly.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from nf.clock import until_woken
from nf.errors import Congestion, NfError, StoreUnavailable
from nf.store.mongo import Collection, Doc, translate_errors

TOKEN = "w"  # the field that carries the token of the last batched update


@dataclass(slots=True)
class _Op:
    key: Any
    filter: Doc
    update: Doc
    token: int
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class UpdateBatcher:
    """Coalesces ``update(key, filter, update)`` calls on one collection into batches."""

    def __init__(self, coll: Collection, *, batch_max: int = 64, in_flight_max: int = 2,
                 queue_max: int = 10_000, what: str = "write") -> None:
        self._coll = coll
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._what = what
        self._queue: deque[_Op] = deque()
        self._slots = asyncio.Semaphore(in_flight_max)
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self.running = False
        # What happened, for metrics and tests: batches written and updates in them.
        self.batches = 0
        self.updates = 0

    def token(self) -> int:
        """A fresh token; the caller sets it in its update (``$set: {TOKEN: token}``)."""
        return self._rng.getrandbits(62)

    async def update(self, key: Any, filter: Doc, update: Doc, token: int | None) -> bool:
        """Apply ``update`` to the document ``key`` if it matches ``filter``: True if it
        landed, False if it matched nothing (or cannot be told apart from that, see the
        module's text). With a ``token`` (which ``update`` must set in ``TOKEN``) it may
        travel in a batch; without one it is written on its own."""
        if token is None or not self.running:
            async with translate_errors(self._what):
                r = await self._coll.update_one(filter, update)
            return r.matched_count == 1
        if len(self._queue) >= self._queue_max:
            raise Congestion(f"{len(self._queue)} database writes are waiting; retry later")
        op = _Op(key, filter, update, token)
        self._queue.append(op)
        self._wake.set()
        return await op.done

    async def run(self, stopping: asyncio.Event) -> None:
        """The worker: write what is queued, batch by batch, until ``stopping`` is set and
        nothing is queued."""
        self.running = True
        # One waiter for the stop, for the whole run: an idle turn waits on one event.
        stop = asyncio.ensure_future(stopping.wait())
        stop.add_done_callback(lambda _f: self._wake.set())
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    if not self._queue:
                        if stopping.is_set():
                            break
                        self._wake.clear()
                        if not self._queue and not stopping.is_set():
                            # Woken by ``update`` or, through the callback above, the stop.
                            await until_woken(self._wake)
                        continue
                    await self._slots.acquire()
                    # Whatever became ready while waiting for a slot joins this batch.
                    n = min(len(self._queue), self._batch_max)
                    batch = [self._queue.popleft() for _ in range(n)]
                    tg.create_task(self._write_and_release(batch))
        finally:
            stop.cancel()
            self.running = False
            while self._queue:  # queued after the last turn: written here, one batch each
                n = min(len(self._queue), self._batch_max)
                await self._write([self._queue.popleft() for _ in range(n)])

    async def _write_and_release(self, batch: list[_Op]) -> None:
        try:
            await self._write(batch)
        finally:
            self._slots.release()

    async def _write(self, batch: list[_Op]) -> None:
        """Write one batch and answer each of its callers; never raises."""
        self.batches += 1
        self.updates += len(batch)
        try:
            landed = await self._bulk(batch)
        except NfError as e:
            for op in batch:
                _answer(op, e)
            return
        for op, ok in zip(batch, landed, strict=True):
            _answer(op, ok)

    async def _bulk(self, batch: list[_Op]) -> list[bool | NfError]:
        failed: dict[int, NfError] = {}
        async with translate_errors(self._what):
            try:
                r = await self._coll.bulk_write(
                    [UpdateOne(op.filter, op.update) for op in batch], ordered=False)
                matched = r.matched_count
            except BulkWriteError as e:
                if e.details.get("writeConcernErrors") or not e.details.get("writeErrors"):
                    raise
                for x in e.details["writeErrors"]:
                    failed[int(x["index"])] = StoreUnavailable(
                        f"the database refused the {self._what} (code {x.get('code')})")
                matched = int(e.details.get("nMatched", 0))
            if matched == len(batch) and not failed:
                return [True] * len(batch)
            unsure = [op for i, op in enumerate(batch) if i not in failed]
            found = {d["_id"]: d.get(TOKEN) async for d in self._coll.find(
                {"_id": {"$in": list({op.key: None for op in unsure})}}, {TOKEN: 1})}
        return [failed[i] if i in failed else found.get(op.key) == op.token
                for i, op in enumerate(batch)]


def _answer(op: _Op, outcome: bool | NfError) -> None:
    if op.done.done():  # the caller went away (cancelled): nobody to tell
        return
    if isinstance(outcome, NfError):
        op.done.set_exception(outcome)
    else:
        op.done.set_result(outcome)
