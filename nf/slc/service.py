"""Spending-limit subscriptions: storage, the three service operations and the
``CounterListener`` that notifies subscribed PCFs when a counter's status changes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from nf import logs
from nf.clock import Clock, iso_z, utc
from nf.errors import BadRequest, NotFound
from nf.ledger.port import CounterChange, Ledger, PolicyCounters
from nf.notify.port import Notification, Outbox
from nf.slc import core
from nf.slc.wire import SpendingLimitContext
from nf.store.mongo import Db, Doc, money_collection, translate_errors

log = logging.getLogger("nf.slc")

API_PREFIX = "/nchf-spendinglimitcontrol/v1"
COLLECTION = "slc_subscriptions"
KIND_NOTIFY = "slc.notify"


def subscription_not_found(sub_id: str) -> NotFound:
    return NotFound(f"no spending limit subscription {sub_id}", cause="SUBSCRIPTION_NOT_FOUND")


class SlcService:
    """Nchf_SpendingLimitControl operations over the ledger's policy counters."""

    def __init__(self, db: Db, clock: Clock, ledger: Ledger, outbox: Outbox) -> None:
        self._c = money_collection(db, COLLECTION)
        self._clock = clock
        self._ledger = ledger
        self._outbox = outbox
        outbox.on_gone(KIND_NOTIFY, self._gone)

    async def ensure_indexes(self) -> None:
        async with translate_errors("creating slc_subscriptions indexes"):
            await self._c.create_index([("supi", ASCENDING)], name="by_supi")

    # -- operations ----------------------------------------------------------------------

    async def _counters(self, supi: str, now: datetime) -> PolicyCounters:
        view = await self._ledger.subscriber(supi, now)
        if view is None:
            raise BadRequest(f"the subscriber {supi} is unknown", cause="USER_UNKNOWN")
        return view.counters

    @staticmethod
    def _ids(ctx: SpendingLimitContext) -> list[str]:
        if ctx.policy_counter_ids is None:
            return list(core.COUNTER_IDS)
        ids = list(dict.fromkeys(ctx.policy_counter_ids))
        unknown = core.unknown_ids(ids)
        if unknown:
            raise BadRequest(f"unknown policy counters: {', '.join(unknown)}",
                             cause="UNKNOWN_POLICY_COUNTERS")
        return ids

    def _expiry(self, ctx: SpendingLimitContext, now: datetime) -> datetime | None:
        if ctx.expiry is not None and ctx.expiry <= now:
            raise BadRequest("expiry lies in the past", cause="MANDATORY_IE_INCORRECT")
        return ctx.expiry

    async def owner(self, sub_id: str) -> str | None:
        """The host network that made subscription ``sub_id`` (``None``: none recorded)."""
        async with translate_errors("reading a spending limit subscription"):
            doc = await self._c.find_one({"_id": sub_id}, {"hostNetwork": 1})
        owner = doc.get("hostNetwork") if doc is not None else None
        return str(owner) if owner is not None else None

    async def subscribe(self, ctx: SpendingLimitContext, api_root: str,
                        host_network: str | None = None) -> tuple[str, dict[str, Any]]:
        """``host_network``: the authenticated caller's, recorded as the owner."""
        if ctx.supi is None or ctx.notif_uri is None:
            missing = [n for n, v in (("supi", ctx.supi), ("notifUri", ctx.notif_uri))
                       if v is None]
            raise BadRequest(f"a subscription needs {' and '.join(missing)}",
                             cause="MANDATORY_IE_MISSING")
        now = self._clock.now()
        logs.bind(supi=ctx.supi)
        ids = self._ids(ctx)
        expiry = self._expiry(ctx, now)
        counters = await self._counters(ctx.supi, now)
        sub_id = uuid.uuid4().hex
        doc: Doc = {"_id": sub_id, "supi": ctx.supi, "gpsi": ctx.gpsi, "ids": ids,
                    "notifUri": ctx.notif_uri, "notifId": ctx.notif_id, "expiry": expiry,
                    "sent": {i: core.status_of(counters, i) for i in ids},
                    "createdAt": now}
        if host_network is not None:
            doc["hostNetwork"] = host_network
        async with translate_errors("storing a spending limit subscription"):
            await self._c.insert_one(doc)
        location = f"{api_root.rstrip('/')}{API_PREFIX}/subscriptions/{sub_id}"
        return location, core.spending_limit_status(
            ctx.supi, counters, ids, notif_id=ctx.notif_id,
            expiry=iso_z(expiry) if expiry else None)

    async def modify(self, sub_id: str, ctx: SpendingLimitContext) -> dict[str, Any]:
        now = self._clock.now()
        async with translate_errors("reading a spending limit subscription"):
            doc = await self._c.find_one({"_id": sub_id})
        if doc is None or _expired(doc, now):
            raise subscription_not_found(sub_id)
        supi = str(doc["supi"])
        if ctx.supi is not None and ctx.supi != supi:
            raise BadRequest("supi differs from the subscription's",
                             cause="MANDATORY_IE_INCORRECT")
        ids = self._ids(ctx) if ctx.policy_counter_ids is not None else list(doc["ids"])
        expiry = self._expiry(ctx, now) if ctx.expiry is not None else doc.get("expiry")
        counters = await self._counters(supi, now)
        update: Doc = {"ids": ids, "expiry": expiry, "updatedAt": now,
                       "sent": {i: core.status_of(counters, i) for i in ids}}
        if ctx.notif_uri is not None:
            update["notifUri"] = ctx.notif_uri
        if ctx.notif_id is not None:
            update["notifId"] = ctx.notif_id
        async with translate_errors("updating a spending limit subscription"):
            r = await self._c.update_one({"_id": sub_id}, {"$set": update})
        if r.matched_count == 0:
            raise subscription_not_found(sub_id)
        return core.spending_limit_status(
            supi, counters, ids, notif_id=update.get("notifId", doc.get("notifId")),
            expiry=iso_z(expiry) if expiry else None)

    async def unsubscribe(self, sub_id: str) -> None:
        async with translate_errors("removing a spending limit subscription"):
            r = await self._c.delete_one({"_id": sub_id})
        if r.deleted_count == 0:
            raise subscription_not_found(sub_id)

    # -- notifications -------------------------------------------------------------------

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        """Notify the subscriptions of these subscribers. The changes come from the ledger's
        pending effects: if this raises, they stay pending and are delivered again (a
        repeated change sends nothing: each subscription remembers what it was sent)."""
        moved = [c.supi for c in changes if c.before != c.after or c.status != c.status_before]
        supis = list(dict.fromkeys(moved))
        if not supis:
            return
        await self.notify(supis)

    async def notify(self, supis: Sequence[str]) -> None:
        """Notify every live subscription of these subscribers whose counters' status moved.

        Each subscription remembers the statuses it was last sent (``sent``); the
        subscriber's counters are read afresh from the ledger (a change that arrives late
        cannot report an old status), compared, stored with a compare-and-set, then sent.
        After sending, a subscription whose ``sent`` moved on meanwhile is sent again, so
        the outbox's last word is the newest status."""
        flt: Doc = {"supi": supis[0]} if len(supis) == 1 else {"supi": {"$in": supis}}
        async with translate_errors("reading spending limit subscriptions"):
            subs = await self._c.find(flt).to_list(None)
        now = self._clock.now()
        subs = [s for s in subs if not _expired(s, now)]
        if not subs:
            return
        fresh: dict[str, PolicyCounters] = {}
        for supi in dict.fromkeys(str(s["supi"]) for s in subs):
            view = await self._ledger.subscriber(supi, now)
            if view is not None:
                fresh[supi] = view.counters
        notes: list[Notification] = []
        sent: dict[str, dict[str, str]] = {}
        for s in subs:
            supi, ids = str(s["supi"]), list(s["ids"])
            if supi not in fresh:
                continue
            status = {i: core.status_of(fresh[supi], i) for i in ids}
            if status == s.get("sent"):
                continue
            async with translate_errors("updating a spending limit subscription"):
                r = await self._c.update_one({"_id": s["_id"], "sent": s.get("sent")},
                                             {"$set": {"sent": status}})
            if r.matched_count == 0:
                continue  # someone else reported a newer status meanwhile
            notes.append(self._note(s, supi, fresh[supi], ids))
            sent[str(s["_id"])] = status
        if notes:
            await self._outbox.enqueue(notes)
            await self._converge(sent)

    def _note(self, s: Doc, supi: str, counters: PolicyCounters, ids: list[str]
              ) -> Notification:
        body = core.spending_limit_status(supi, counters, ids, notif_id=s.get("notifId"))
        # Every notification carries all subscribed counters: the latest one wins.
        return Notification(kind=KIND_NOTIFY, uri=f"{s['notifUri']}/notify", body=body,
                            coalesce_key=f"slc:{s['_id']}", resource=str(s["_id"]),
                            supi=supi)

    async def _converge(self, sent: dict[str, dict[str, str]]) -> None:
        for _ in range(5):
            if not sent:
                return
            async with translate_errors("reading spending limit subscriptions"):
                docs = await self._c.find({"_id": {"$in": list(sent)}}).to_list(None)
            again: list[Notification] = []
            for d in docs:
                sid, now_sent = str(d["_id"]), d.get("sent")
                if now_sent is None or now_sent == sent[sid]:
                    continue
                sent[sid] = dict(now_sent)
                infos = {i: {"policyCounterId": i, "currentStatus": v}
                         for i, v in now_sent.items()}
                body: dict[str, Any] = {"supi": d["supi"], "statusInfos": infos}
                if d.get("notifId") is not None:
                    body["notifId"] = d["notifId"]
                again.append(Notification(
                    kind=KIND_NOTIFY, uri=f"{d['notifUri']}/notify", body=body,
                    coalesce_key=f"slc:{sid}", resource=sid, supi=str(d["supi"])))
            if not again:
                return
            await self._outbox.enqueue(again)
            sent = {n.resource: sent[n.resource] for n in again if n.resource}

    async def _gone(self, n: Notification) -> None:
        # The subscribing PCF no longer knows the subscription: drop it here too.
        if n.resource is not None:
            async with translate_errors("removing a spending limit subscription"):
                await self._c.delete_one({"_id": n.resource})
            logs.log(log, logging.INFO, "subscriber PCF answered 404; subscription removed",
                     subscriptionId=n.resource)


def _expired(doc: Doc, now: datetime) -> bool:
    exp = doc.get("expiry")
    return exp is not None and utc(exp) <= now
