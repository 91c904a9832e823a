"""The MongoDB-backed outbox and its HTTP/2 sender.

Storage (collection ``outbox``), one document per notification::

    _id          ObjectId, or "ck:<coalesce_key>" for a coalescing notification
    kind, uri, body, resource, supi, coalesce_key
    diameter_peer  the Origin-Host to push to over Diameter (``diameter://`` URIs), else None
    status       "pending" | "sent" | "gone" | "dead"
    version      bumped each time a coalescing slot is overwritten by a newer notification
    attempts     failed tries of the current version
    due_at       not sent before this time (backoff)
    enqueued_at  when the current version was enqueued (latency metric)
    lease_until, lease_owner   who is sending it now, and until when

A notification with a ``coalesce_key`` lives in one slot document: enqueueing again
overwrites the body and bumps ``version`` but leaves the lease alone. A sender holding the
lease finishes its (older) send, finds the version changed, releases the lease, and only
then may anyone send the newer body. So per key at most one send is in flight, sends happen
in enqueue order, and an unsent older body is simply never sent (latest wins).

Senders in every process claim due documents with a lease (a conditional update); a
process that dies leaves leases that expire, and another sender picks the work up again.

A notification whose URI is ``diameter://<Origin-Host>/<Session-Id>/...`` is not for HTTP:
the HTTP sender never claims it. The process holding that peer's Diameter connection claims
it (``claim_diameter``), sends the request and settles it here (``settle``), with the same
outcomes and the same gone-handlers as HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
from bson import ObjectId
from bson.errors import BSONError
from pymongo import ASCENDING, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError
from quart import Blueprint

from nf import logs
from nf.clock import until_woken, utc
from nf.errors import Congestion
from nf.notify.leases import Leases
from nf.notify.policy import Outcome, after_failure, backoff_s, classify
from nf.notify.port import DIAMETER_SCHEME, GoneHandler, Notification, Signer
from nf.notify.wake import Waker
from nf.runtime import Role, Runtime, Worker
from nf.store.mongo import Doc, money_collection, translate_errors

log = logging.getLogger("nf.notify")

COLLECTION = "outbox"
# Delivered notifications are kept this long (for inspection), then purged.
SENT_RETENTION_S = 3600.0
_PURGE_EVERY_S = 60.0


def diameter_peer(uri: str) -> str | None:
    """The peer's Origin-Host of a notification pushed over Diameter (None: over HTTP)."""
    if not uri.startswith(DIAMETER_SCHEME):
        return None
    return unquote(uri[len(DIAMETER_SCHEME):].split("/", 1)[0])


def _notification(doc: Doc) -> Notification:
    return Notification(kind=doc["kind"], uri=doc["uri"], body=doc["body"],
                        coalesce_key=doc.get("coalesce_key"), resource=doc.get("resource"),
                        supi=doc.get("supi"))


class MongoOutbox:
    """``nf.notify.port.Outbox`` on MongoDB, and the ``Part`` (name ``notify``) whose worker
    delivers over HTTP/2. Build one per process: ``MongoOutbox(rt)``; ``waker``: how to
    wake the Diameter process of the same ``nf serve`` when a Diameter push is enqueued
    here (``nf.notify.wake``)."""

    name = "notify"

    def __init__(self, rt: Runtime, *, client: httpx.AsyncClient | None = None,
                 rng: random.Random | None = None, waker: Waker | None = None) -> None:
        self._rt = rt
        self._waker = waker
        self._cfg = rt.settings.notify
        self._coll = money_collection(rt.db, COLLECTION)
        self._handlers: dict[str, GoneHandler] = {}
        self._signers: dict[str, Signer] = {}
        self._wake = asyncio.Event()
        # Set when a Diameter push is enqueued in this process (its sender waits on it);
        # another process's enqueue reaches it through the waker's socket.
        self.diameter_wake = asyncio.Event()
        self._pending_estimate = 0
        self._inflight = 0
        self._client = client
        self._own_client = client is None
        self._rng = rng or random.Random()
        owner = f"{rt.settings.instance_id}:{uuid.uuid4().hex[:8]}"
        self._leases = Leases(self._coll, rt.clock, self._cfg.lease_s, owner)
        self._last_purge = float("-inf")
        self._last_count = float("-inf")

    # -- the port -------------------------------------------------------------------------

    def on_gone(self, kind: str, handler: GoneHandler) -> None:
        self._handlers[kind] = handler

    def sign_with(self, kind: str, signer: Signer) -> None:
        self._signers[kind] = signer

    async def enqueue(self, items: Sequence[Notification]) -> None:
        if not items:
            return
        if self._pending_estimate + len(items) > self._cfg.outbox_max_pending:
            self._rt.metrics.notifications.labels(items[0].kind, "refused").inc()
            raise Congestion(
                f"the outbox holds {self._pending_estimate} notifications "
                f"(limit {self._cfg.outbox_max_pending}); retry later")
        now = self._rt.clock.now()
        ops: list[InsertOne[Doc] | UpdateOne] = []
        ids: list[Any] = []
        http: list[Any] = []
        for n in items:
            peer = diameter_peer(n.uri)
            fields = {"kind": n.kind, "uri": n.uri, "body": n.body, "resource": n.resource,
                      "supi": n.supi, "coalesce_key": n.coalesce_key, "status": "pending",
                      "attempts": 0, "due_at": now, "enqueued_at": now, "last_error": None,
                      "diameter_peer": peer}
            if n.coalesce_key is None:
                oid = ObjectId()
                ops.append(InsertOne({"_id": oid, **fields, "version": 1,
                                      "lease_until": None, "lease_owner": None}))
                ids.append(oid)
            else:
                key = f"ck:{n.coalesce_key}"
                ops.append(UpdateOne({"_id": key},
                                     {"$set": fields, "$inc": {"version": 1},
                                      "$unset": {"sent_at": ""}}, upsert=True))
                ids.append(key)
            if peer is None:
                http.append(ids[-1])
        try:
            await self._write(ops)
        except (BSONError, OverflowError, ValueError, TypeError):
            # One notification cannot be stored (encoding): store the others, and the bad
            # one as a dead letter saying why, so it is neither lost silently nor retried.
            for n, op, oid in zip(items, ops, ids, strict=True):
                try:
                    await self._write([op])
                except (BSONError, OverflowError, ValueError, TypeError) as e:
                    await self._dead_letter(n, oid, now, f"cannot be stored: {e}")
        self._pending_estimate += len(items)
        self._leases.fresh.extend(http)
        if len(http) < len(ids):
            self.diameter_wake.set()
            if self._waker is not None:
                self._waker.wake()
        if http:
            self._wake.set()

    async def _dead_letter(self, n: Notification, oid: Any, now: datetime,
                           error: str) -> None:
        self._rt.metrics.notifications.labels(n.kind, "dead").inc()
        logs.log(log, logging.ERROR, "notification not storable", kind=n.kind, uri=n.uri,
                 resource=n.resource, supi=n.supi, error=error[:300])
        doc = {"kind": n.kind, "uri": n.uri[:2048], "body": {"unstorable": repr(n.body)[:2000]},
               "resource": str(n.resource)[:256], "supi": str(n.supi)[:64],
               "coalesce_key": None, "status": "dead", "attempts": 0, "due_at": now,
               "enqueued_at": now, "last_error": error[:1000], "sent_at": now,
               "version": 1, "lease_until": None, "lease_owner": None}
        try:
            async with translate_errors("outbox dead letter"):
                await self._coll.replace_one({"_id": oid}, doc, upsert=True)
        except (BSONError, OverflowError, ValueError, TypeError):
            pass  # logged above; nothing more can be kept

    async def _write(self, ops: list[InsertOne[Doc] | UpdateOne]) -> None:
        async with translate_errors("outbox enqueue"):
            for attempt in range(3):
                try:
                    await self._coll.bulk_write(ops, ordered=True)
                    return
                except BulkWriteError as e:
                    # Two processes upserting the same new slot at once: the loser gets a
                    # duplicate key error; the slot exists now, so do the rest again.
                    errs = e.details.get("writeErrors", [])
                    if attempt == 2 or not errs or any(
                            err.get("code") != 11000 for err in errs):
                        raise
                    ops = ops[min(int(err["index"]) for err in errs):]

    def wake(self) -> None:
        """Look for due notifications now (tests moving a fake clock use this)."""
        self._wake.set()

    # -- the Part -------------------------------------------------------------------------

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        async with translate_errors("outbox indexes"):
            await self._coll.create_index([("status", ASCENDING), ("due_at", ASCENDING)],
                                          name="status_due")
            await self._coll.create_index([("lease_owner", ASCENDING)], name="lease_owner")
            await self._coll.create_index([("resource", ASCENDING)], name="resource")
            # The Diameter sender's claims, by peer, without scanning the HTTP backlog.
            await self._coll.create_index([("diameter_peer", ASCENDING), ("status", ASCENDING),
                                           ("due_at", ASCENDING)], name="diameter_due")

    def workers(self) -> list[Worker]:
        return [self.run]

    # -- the sender -----------------------------------------------------------------------

    async def pending_count(self) -> int:
        async with translate_errors("outbox count"):
            return await self._coll.count_documents({"status": "pending"})

    async def run(self) -> None:
        """Deliver until ``rt.stopping`` is set, then finish the sends in flight."""
        stopping = self._rt.stopping
        if self._client is None:
            self._client = httpx.AsyncClient(
                http1=False, http2=True, timeout=self._cfg.request_timeout_s,
                limits=httpx.Limits(max_connections=max(4, self._cfg.concurrency),
                                    max_keepalive_connections=max(4, self._cfg.concurrency)))
        done = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                while not stopping.is_set():
                    claimed = 0
                    try:
                        await self._housekeeping()
                        capacity = self._cfg.concurrency - self._inflight
                        if capacity > 0:
                            docs = await self._leases.http(capacity)
                            claimed = len(docs)
                            for doc in docs:
                                self._inflight += 1
                                self._rt.metrics.outbox_pending.inc()
                                tg.create_task(self._deliver(doc, done))
                    except Exception:
                        log.exception("outbox: claiming failed; will retry")
                    if claimed and self._inflight < self._cfg.concurrency:
                        continue  # there may be more due right now
                    await self._idle(done)
        finally:
            if self._own_client and self._client is not None:
                await self._client.aclose()
                self._client = None
            if self._waker is not None:
                self._waker.close()

    async def _idle(self, done: asyncio.Event) -> None:
        full = self._inflight >= self._cfg.concurrency
        if self._leases.fresh and not full:
            return  # more enqueued here while claiming: claim them now
        self._wake.clear()
        woken_by = (self._wake, self._rt.stopping, done) if full else \
            (self._wake, self._rt.stopping)
        try:
            await until_woken(*woken_by, clock=self._rt.clock,
                              timeout_s=self._cfg.poll_interval_s)
        finally:
            done.clear()

    async def _housekeeping(self) -> None:
        mono = self._rt.clock.monotonic()
        if mono - self._last_count >= self._cfg.poll_interval_s * 4:
            self._last_count = mono
            self._pending_estimate = await self.pending_count()
        if mono - self._last_purge >= _PURGE_EVERY_S:
            self._last_purge = mono
            cutoff = self._rt.clock.now() - timedelta(seconds=SENT_RETENTION_S)
            async with translate_errors("outbox purge"):
                await self._coll.delete_many({"status": {"$in": ["sent", "gone"]},
                                              "sent_at": {"$lt": cutoff}})

    async def claim_diameter(self, peers: Sequence[str], limit: int) -> list[Doc]:
        """Lease up to ``limit`` due Diameter pushes to these peers (Origin-Hosts connected
        to this process); settle each with ``settle``."""
        return await self._leases.diameter(peers, limit)

    async def claim_diameter_stranded(self, peers: Sequence[str], grace_s: float,
                                      limit: int) -> list[Doc]:
        """Lease Diameter pushes to peers connected nowhere (``Leases.stranded``); the
        caller settles them as failed tries."""
        return await self._leases.stranded(peers, grace_s, limit)

    async def _deliver(self, doc: Doc, done: asyncio.Event) -> None:
        status: int | None = None
        error: str | None = None
        try:
            try:
                n = _notification(doc)
                content = json.dumps(n.body, separators=(",", ":")).encode()
            except (KeyError, TypeError, ValueError) as e:
                # A record no sender can ever send: settle it dead at once, never retry.
                await self._poisoned(doc, f"not sendable: {type(e).__name__}: {e}")
                return
            headers = {"content-type": "application/json"}
            signer = self._signers.get(n.kind)
            if signer is not None:
                signed = signer(n, content, self._rt.clock.now())
                if signed is None:
                    await self._poisoned(doc, "no secret to sign it with")
                    return
                headers.update(signed)
            assert self._client is not None
            try:
                resp = await self._client.post(n.uri, content=content, headers=headers)
                status = resp.status_code
                if status >= 300:
                    error = f"HTTP {status}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            outcome = classify(status)
            if outcome is Outcome.RETRY:
                outcome = after_failure(int(doc.get("attempts", 0)), self._cfg)
            await self._settle(doc, n, outcome, error)
        except Exception:
            log.exception("outbox: settling a delivery failed; the lease will expire",
                          extra={"fields": {"kind": doc.get("kind"),
                                            "resource": doc.get("resource")}})
        finally:
            self._inflight -= 1
            self._rt.metrics.outbox_pending.dec()
            done.set()

    async def settle(self, doc: Doc, outcome: Outcome, error: str | None) -> None:
        """Settle a claimed notification sent by another transport (Diameter) the way the
        HTTP sender does: a RETRY past ``max_attempts`` is dead, GONE calls the kind's
        gone-handler."""
        if outcome is Outcome.RETRY:
            outcome = after_failure(int(doc.get("attempts", 0)), self._cfg)
        await self._settle(doc, _notification(doc), outcome, error)

    async def poisoned(self, doc: Doc, error: str) -> None:
        """Settle a claimed notification no transport can ever send as dead."""
        await self._poisoned(doc, error)

    async def _poisoned(self, doc: Doc, error: str) -> None:
        logs.log(log, logging.ERROR, "notification dead", kind=doc.get("kind"),
                 resource=doc.get("resource"), error=error[:300])
        async with translate_errors("outbox settle"):
            await self._coll.update_one(
                {"_id": doc["_id"], "lease_owner": doc.get("lease_owner")},
                {"$set": {"status": "dead", "last_error": error[:1000],
                          "sent_at": self._rt.clock.now(), "lease_until": None,
                          "lease_owner": None}})
        self._rt.metrics.notifications.labels(str(doc.get("kind")), "dead").inc()

    async def _settle(self, doc: Doc, n: Notification, outcome: Outcome,
                      error: str | None) -> None:
        now = self._rt.clock.now()
        m = self._rt.metrics
        mine = {"_id": doc["_id"], "lease_owner": doc["lease_owner"]}
        release = {"lease_until": None, "lease_owner": None}
        if outcome is Outcome.GONE:
            handler = self._handlers.get(n.kind)
            if handler is not None:
                await handler(n)
        if outcome in (Outcome.SENT, Outcome.GONE, Outcome.DEAD):
            update: dict[str, Any] = {"$set": {"status": outcome.value, "last_error": error,
                                               "sent_at": now, **release}}
            if outcome is Outcome.DEAD:
                update["$inc"] = {"attempts": 1}
        else:
            delay = backoff_s(int(doc.get("attempts", 0)) + 1, self._cfg, self._rng)
            update = {"$set": {"due_at": now + timedelta(seconds=delay), "last_error": error,
                               **release}, "$inc": {"attempts": 1}}
        async with translate_errors("outbox settle"):
            res = await self._coll.update_one({**mine, "version": doc["version"]}, update)
            if res.matched_count == 0:
                # A newer notification replaced this one while it was in flight (or our
                # lease was lost): free the slot so the newer one goes out now.
                await self._coll.update_one(mine, {"$set": release})
                self._wake.set()
        m.notifications.labels(n.kind, outcome.value).inc()
        if outcome is Outcome.SENT:
            m.notification_latency.labels(n.kind).observe(
                max(0.0, (now - utc(doc["enqueued_at"])).total_seconds()))
        if outcome in (Outcome.DEAD, Outcome.GONE, Outcome.RETRY):
            logs.log(log, logging.WARNING if outcome is Outcome.DEAD else logging.INFO,
                     f"notification {outcome.value}", kind=n.kind, uri=n.uri,
                     resource=n.resource, supi=n.supi, error=error,
                     attempts=int(doc.get("attempts", 0)) + 1)
