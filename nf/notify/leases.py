"""Who sends which notification: leases on the outbox's documents.

A sender takes due documents with a conditional update that sets ``lease_until`` and a
``lease_owner`` token of its own; a process that dies leaves leases that expire, and another
sender takes the work again. Documents are routed by ``diameter_peer``: the HTTP sender
takes only those without one, the Diameter process only those of the peers it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from nf.clock import Clock, utc
from nf.store.mongo import Doc, translate_errors

# What the HTTP sender may send.
HTTP_ONLY: dict[str, Any] = {"diameter_peer": None}


def lease_free(now: datetime) -> dict[str, Any]:
    return {"$or": [{"lease_until": None}, {"lease_until": {"$lte": now}}]}


class Leases:
    """Claims due notifications for one process (``owner``) for ``lease_s`` at a time."""

    def __init__(self, coll: AsyncCollection[Doc], clock: Clock, lease_s: float,
                 owner: str) -> None:
        self._coll = coll
        self._clock = clock
        self._lease_s = lease_s
        self._owner = owner
        # Ids enqueued by this process for HTTP and not yet claimed: claimed first, by id.
        self.fresh: list[Any] = []

    async def http(self, limit: int) -> list[Doc]:
        """Up to ``limit`` due HTTP notifications, those enqueued here first."""
        fresh, self.fresh = self.fresh[:limit], self.fresh[limit:]
        return await self._claim(limit, HTTP_ONLY, fresh)

    async def diameter(self, peers: Sequence[str], limit: int) -> list[Doc]:
        """Up to ``limit`` due Diameter pushes to these peers (connected to this process)."""
        if not peers or limit <= 0:
            return []
        return await self._claim(limit, {"diameter_peer": {"$in": list(peers)}}, [])

    async def stranded(self, peers: Sequence[str], grace_s: float, limit: int) -> list[Doc]:
        """Up to ``limit`` Diameter pushes to peers *not* connected here that no process has
        taken for ``grace_s`` after they were due (their peer is connected nowhere): the
        caller settles them as a failed try, so they back off and end dead after
        ``max_attempts`` like an unreachable HTTP peer's, instead of piling up."""
        if limit <= 0:
            return []
        before = self._clock.now() - timedelta(seconds=grace_s)
        route = {"diameter_peer": {"$ne": None, "$nin": list(peers)},
                 "due_at": {"$lte": before}}
        return await self._claim(limit, route, [])

    async def _claim(self, limit: int, route: dict[str, Any], fresh: list[Any]
                     ) -> list[Doc]:
        """Lease up to ``limit`` due notifications of ``route``: ``fresh`` ids if any are
        given, else the longest due."""
        now = self._clock.now()
        lease = now + timedelta(seconds=self._lease_s)
        due = {"status": "pending", "due_at": {"$lte": now}, **lease_free(now), **route}
        async with translate_errors("outbox claim"):
            if len(fresh) == 1:
                doc = await self._coll.find_one_and_update(
                    {"_id": fresh[0], **due},
                    {"$set": {"lease_until": lease, "lease_owner": self._token()}},
                    return_document=ReturnDocument.AFTER)
                return [] if doc is None else [doc]
            if not fresh:
                cursor = self._coll.find(due, {"_id": 1}).sort("due_at", ASCENDING)
                fresh = [d["_id"] async for d in cursor.limit(limit)]
                if not fresh:
                    return []
            token = self._token()
            res = await self._coll.update_many(
                {"_id": {"$in": fresh}, **due},
                {"$set": {"lease_until": lease, "lease_owner": token}})
            if res.modified_count == 0:
                return []
            docs = [d async for d in self._coll.find({"lease_owner": token})]
        docs.sort(key=lambda d: utc(d["due_at"]))
        return docs

    def _token(self) -> str:
        return f"{self._owner}:{uuid.uuid4().hex[:8]}"
