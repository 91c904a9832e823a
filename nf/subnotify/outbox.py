"""The persisted outbox of subscriber notices (collection ``sub_notices``).

One document per (notice key, channel); ``_id`` is that pair, so inserting the same notice
again (a retried charge, a second process, a duplicate counter change) is a no-op. Senders
claim due documents with a lease; a process that dies mid-send leaves a lease that runs out
and another sender takes the document again, or its restarted successor takes it back at
once (``reclaim``, ``nf.subnotify.holder``). States::

    scheduled | held | queued -> sending -> submitted -> delivered | undeliverable
                                        \\-> queued (retry)   \\-> expired | rejected
                                        \\-> failed | rejected | suppressed

``held``: waiting for the end of the brand's quiet hours; ``scheduled``: a reminder due
later; ``suppressed``: the subscriber opted out of this kind of message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError

from nf import logs
from nf.errors import NfError
from nf.store.mongo import Db, Doc, translate_errors
from nf.subnotify.holder import Holder, dead_predecessor, pid_alive

COLLECTION = "sub_notices"
PREFS = "sub_notice_prefs"
WAITING = ("scheduled", "held", "queued")
FINAL = ("delivered", "undeliverable", "expired", "rejected", "failed", "suppressed")
# SMPP receipt "stat" -> final state of the message.
RECEIPT_STATE = {"DELIVRD": "delivered", "EXPIRED": "expired", "DELETED": "undeliverable",
                 "UNDELIV": "undeliverable", "REJECTD": "rejected", "UNKNOWN": "undeliverable"}
MAX_HISTORY = 20

log = logging.getLogger("nf.subnotify")


def _mid(message_id: str) -> str:
    """An SMSC message id as a field name (no dots or dollars)."""
    return message_id.replace(".", "_").replace("$", "_")


class NoticeOutbox:
    def __init__(self, db: Db, lease_s: float) -> None:
        self.col = db[COLLECTION]
        self.prefs = db[PREFS]
        self.lease = timedelta(seconds=lease_s)

    async def ensure_indexes(self) -> None:
        async with translate_errors("notice indexes"):
            await self.col.create_index([("channel", ASCENDING), ("state", ASCENDING),
                                         ("not_before", ASCENDING), ("seq", ASCENDING)])
            await self.col.create_index([("supi", ASCENDING), ("created_at", DESCENDING)])
            await self.col.create_index([("msg_ids", ASCENDING)])

    async def insert(self, docs: Sequence[Doc]) -> int:
        """Insert new notices; ones already there are left as they are. Returns how many
        were new."""
        if not docs:
            return 0
        async with translate_errors("notice insert"):
            try:
                res = await self.col.insert_many(list(docs), ordered=False)
                return len(res.inserted_ids)
            except BulkWriteError as e:
                errs = e.details.get("writeErrors", [])
                if any(w.get("code") != 11000 for w in errs):
                    raise
                return len(docs) - len(errs)

    async def pending(self) -> int:
        async with translate_errors("notice count"):
            return await self.col.count_documents(
                {"state": {"$in": [*WAITING, "sending"]}}, limit=10_000_000)

    async def claim(self, channel: str, now: datetime, owner: Holder, limit: int = 1
                    ) -> list[Doc]:
        """Up to ``limit`` due notices of the channel, oldest first, leased to ``owner``;
        else ones whose lease ran out (their sender died). One sorted read, then a
        conditional update per notice by ``_id``: a notice another sender took meanwhile
        is skipped."""
        due = {"state": {"$in": list(WAITING)}, "not_before": {"$lte": now}}
        stale = {"state": "sending", "lease_until": {"$lte": now}}
        lease = {"$set": {"state": "sending", "lease_until": now + self.lease,
                          "owner": owner.owner, "held_by": owner.doc()},
                 "$inc": {"attempts": 1}}
        out: list[Doc] = []
        async with translate_errors("notice claim"):
            for q in (due, stale):
                cur = self.col.find({"channel": channel, **q}, {"_id": 1}).sort(
                    [("not_before", ASCENDING), ("seq", ASCENDING)]).limit(limit)
                ids = [d["_id"] async for d in cur]
                for i in ids:
                    doc = await self.col.find_one_and_update(
                        {"_id": i, **q}, lease, return_document=ReturnDocument.AFTER)
                    if doc is not None:
                        out.append(doc)
                if out:
                    break
        return out

    async def reclaim(self, channel: str, now: datetime, me: Holder,
                      alive: Callable[[int], bool], limit: int = 10_000) -> int:
        """End at once the leases that dead predecessors of ``me`` (``holder``) hold on
        notices of the channel, so that the next ``claim`` takes them; returns how many."""
        q = {"channel": channel, "state": "sending", "lease_until": {"$gt": now},
             "held_by.instance": me.instance, "held_by.host": me.host}
        dead: dict[tuple[int, str], list[Any]] = {}
        async with translate_errors("notice reclaim"):
            cur = self.col.find(q, {"_id": 1, "held_by": 1}).limit(limit)
            async for d in cur:
                h = Holder.of(d.get("held_by"))
                if h is not None and dead_predecessor(h, me, alive):
                    dead.setdefault((h.pid, h.token), []).append(d["_id"])
            n = 0
            for (pid, token), ids in dead.items():
                r = await self.col.update_many(
                    {"_id": {"$in": ids}, **q, "held_by.pid": pid, "held_by.token": token},
                    {"$set": {"lease_until": now}})
                n += r.modified_count
        return n

    async def _set(self, doc_id: str, now: datetime, state: str, when: str | None = None,
                   only_from: Sequence[str] = ("sending",), **extra: Any) -> bool:
        fields: dict[str, Any] = {"state": state, "updated_at": now, **extra}
        if when:
            fields[when] = now
        async with translate_errors("notice update"):
            r = await self.col.update_one(
                {"_id": doc_id, "state": {"$in": list(only_from)}},
                {"$set": fields, "$push": {"history": {
                    "$each": [{"state": state, "at": now}], "$slice": -MAX_HISTORY}}})
            return r.modified_count == 1

    async def retry(self, doc_id: str, now: datetime, at: datetime, error: str) -> bool:
        return await self._set(doc_id, now, "queued", not_before=at, error=error)

    async def finish(self, doc_id: str, now: datetime, state: str, error: str | None = None
                     ) -> bool:
        return await self._set(doc_id, now, state, "done_at", error=error)

    async def sent(self, doc_id: str, now: datetime, state: str = "delivered") -> bool:
        """A webhook answered 2xx."""
        return await self._set(doc_id, now, state, "done_at", sent_at=now)

    async def part_accepted(self, doc_id: str, part: int, parts: int, message_id: str,
                            now: datetime) -> bool:
        """The SMSC accepted one part of ``parts``; once every part is accepted the notice
        is ``submitted``. True when this call completed it. One write for a single part."""
        accepted = {f"parts.{part}.msg_id": message_id, f"parts.{part}.at": now}
        async with translate_errors("notice update"):
            if parts == 1:
                r = await self.col.update_one(
                    {"_id": doc_id, "state": "sending"},
                    {"$set": {**accepted, "state": "submitted", "sent_at": now,
                              "updated_at": now},
                     "$addToSet": {"msg_ids": message_id},
                     "$push": {"history": {"$each": [{"state": "submitted", "at": now}],
                                           "$slice": -MAX_HISTORY}}})
                if r.modified_count == 1:
                    return True
            doc = await self.col.find_one_and_update(
                {"_id": doc_id}, {"$set": accepted, "$addToSet": {"msg_ids": message_id}},
                return_document=ReturnDocument.AFTER)
        if doc is not None and all(p.get("msg_id") for p in doc["parts"]):
            return await self._set(doc_id, now, "submitted", "sent_at")
        return False

    async def receipt(self, message_id: str, stat: str, now: datetime) -> Doc | None:
        """A delivery receipt for one part; the notice's state becomes final once every
        part has one (any part not delivered decides)."""
        async with translate_errors("notice receipt"):
            final = RECEIPT_STATE.get(stat, "undeliverable")
            doc = await self.col.find_one_and_update(  # one part: one write
                {"msg_ids": message_id, "nparts": 1,
                 "state": {"$in": ["sending", "submitted", "queued"]}},
                {"$set": {f"receipts.{_mid(message_id)}": stat, "state": final,
                          "done_at": now, "updated_at": now},
                 "$push": {"history": {"$each": [{"state": final, "at": now}],
                                       "$slice": -MAX_HISTORY}}},
                return_document=ReturnDocument.AFTER)
            if doc is not None:
                return doc
            doc = await self.col.find_one_and_update(
                {"msg_ids": message_id},
                {"$set": {f"receipts.{_mid(message_id)}": stat}},
                return_document=ReturnDocument.AFTER)
        if doc is None:
            return None
        got = doc.get("receipts", {})
        ids = [p.get("msg_id") for p in doc["parts"]]
        if all(i and _mid(i) in got for i in ids):
            states = [RECEIPT_STATE.get(got[_mid(i)], "undeliverable") for i in ids if i]
            final = next((s for s in states if s != "delivered"), "delivered")
            await self._set(doc["_id"], now, final, "done_at",
                            only_from=("sending", "submitted", "queued"))
            doc["state"] = final
        return doc

    async def for_subscriber(self, supi: str, limit: int, brand: str | None = None,
                             waiting: bool | None = None) -> list[Doc]:
        """The newest ``limit`` notices of ``supi`` (of ``brand`` only, when given).
        ``waiting``: only those not sent yet (``WAITING``), soonest due first; False: only
        the others (sending, sent, ended), newest first."""
        q: Doc = {"supi": supi} if brand is None else {"supi": supi, "brand": brand}
        order: list[tuple[str, int]] = [("created_at", DESCENDING)]
        if waiting is not None:
            q["state"] = {"$in" if waiting else "$nin": list(WAITING)}
        if waiting:
            order = [("not_before", ASCENDING), ("created_at", ASCENDING)]
        async with translate_errors("notice list"):
            cur = self.col.find(q).sort(order).limit(limit)
            return [d async for d in cur]

    async def preferences(self, supi: str) -> Doc:
        async with translate_errors("notice preferences"):
            d = await self.prefs.find_one({"_id": supi})
        return d or {"_id": supi, "marketing": True, "language": None}

    async def set_preferences(self, supi: str, marketing: bool, language: str | None,
                              now: datetime) -> Doc:
        async with translate_errors("notice preferences"):
            d = await self.prefs.find_one_and_update(
                {"_id": supi}, {"$set": {"marketing": marketing, "language": language,
                                         "updated_at": now}},
                upsert=True, return_document=ReturnDocument.AFTER)
        assert d is not None
        return d


async def reclaim_at_start(outbox: NoticeOutbox, channel: str, now: datetime,
                           me: Holder) -> None:
    """A sender's first step: take back what this instance's dead processes held on this
    host (a restart after a crash), instead of waiting ``notices.lease_s`` for it."""
    try:
        n = await outbox.reclaim(channel, now, me, pid_alive)
    except NfError as e:  # the leases run out by themselves
        logs.log(log, logging.WARNING, "notice reclaim failed", channel=channel,
                 detail=e.detail)
        return
    if n:
        logs.log(log, logging.INFO, "took back notices a dead process held",
                 channel=channel, notices=n)
