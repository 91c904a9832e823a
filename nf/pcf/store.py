"""The SM policy associations in MongoDB (collection ``sm_policies``).

One document per association. Every write that changes the decision is a compare-and-set
on ``version`` (single-document atomic update), so concurrent re-evaluations of the same
policy cannot interleave into a stale result. An association the SMF released (or no
longer knows) is deleted; one the PCF terminated stays as a tombstone (``ended``) until the
SMF's delete arrives or ``TOMBSTONE_TTL_S`` passes (TTL index), so the terminate can be
re-sent if a concurrent push overtook it. Its EDRs remain.

A decision that must reach the SMF is stored with ``pushOwed`` in the same write as the
decision; the flag is cleared (``settle``) once the push is in the persisted outbox. A
process that dies in between leaves the flag, and any process re-sends it (``owed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from nf.clock import utc
from nf.ledger.port import Speed
from nf.notify.port import CLIENT_FIELD, CLIENT_INDEX, Client, left_behind
from nf.pcf.core import PolicyState
from nf.store.mongo import Db, Doc, money_collection, translate_errors

COLLECTION = "sm_policies"
TOMBSTONE_TTL_S = 86_400
_LIVE: Doc = {"ended": {"$exists": False}}


@dataclass(frozen=True)
class StoredPolicy:
    state: PolicyState
    context: dict[str, Any]
    resource_uri: str
    brand: str | None
    gpsi: str | None
    host_network: str | None
    decision: dict[str, Any]
    # The Diameter client that opened it (Gx), written with the association only.
    client: Client | None = None


def _speed(d: Doc) -> Speed:
    return Speed(uplink_kbps=int(d["ul"]), downlink_kbps=int(d["dl"]))


def to_doc(p: StoredPolicy, now: datetime) -> Doc:
    s = p.state
    d: Doc = {
        "_id": s.sm_policy_id,
        "supi": s.supi,
        "notificationUri": s.notification_uri,
        "servingPlmn": s.serving_plmn,
        "roaming": s.roaming,
        "speed": {"ul": s.speed.uplink_kbps, "dl": s.speed.downlink_kbps},
        "reason": s.reason,
        "version": s.version,
        "recheckAt": s.recheck_at,
        "context": p.context,
        "resourceUri": p.resource_uri,
        "brand": p.brand,
        "gpsi": p.gpsi,
        "hostNetwork": p.host_network,
        "decision": p.decision,
        "pduSessionId": p.context.get("pduSessionId"),
        "createdAt": now,
        "updatedAt": now,
    }
    if p.client is not None:
        d[CLIENT_FIELD] = p.client.doc()
    return d


def from_doc(d: Doc) -> StoredPolicy:
    recheck = d.get("recheckAt")
    state = PolicyState(
        sm_policy_id=str(d["_id"]), supi=str(d["supi"]),
        notification_uri=str(d["notificationUri"]), serving_plmn=d.get("servingPlmn"),
        roaming=bool(d.get("roaming")), speed=_speed(d["speed"]), reason=str(d["reason"]),
        version=int(d["version"]), active=True,
        recheck_at=utc(recheck) if recheck is not None else None)
    return StoredPolicy(state=state, context=dict(d.get("context") or {}),
                        resource_uri=str(d.get("resourceUri", "")), brand=d.get("brand"),
                        gpsi=d.get("gpsi"), host_network=d.get("hostNetwork"),
                        decision=dict(d.get("decision") or {}))


class PolicyStore:
    def __init__(self, db: Db) -> None:
        self._c = money_collection(db, COLLECTION)

    async def ensure_indexes(self) -> None:
        async with translate_errors("creating sm_policies indexes"):
            # The push path: every active policy of a set of subscribers in one query.
            await self._c.create_index([("supi", ASCENDING)], name="by_supi")
            await self._c.create_index([("recheckAt", ASCENDING)], name="by_recheck")
            await self._c.create_index([("endedAt", ASCENDING)], name="tombstone_ttl",
                                       expireAfterSeconds=TOMBSTONE_TTL_S)
            await self._c.create_index([("pushOwed", ASCENDING), ("updatedAt", ASCENDING)],
                                       name="push_owed", sparse=True)
            # A Diameter client's restart: the associations it opened before (rare).
            await self._c.create_index(CLIENT_INDEX, name="by_client", sparse=True)

    async def insert(self, p: StoredPolicy, now: datetime) -> None:
        """Store a new association; one with the same id (a repeated create for the same
        PDU session) is replaced."""
        async with translate_errors("storing an SM policy"):
            await self._c.replace_one({"_id": p.state.sm_policy_id}, to_doc(p, now),
                                      upsert=True)

    async def get(self, sm_policy_id: str) -> StoredPolicy | None:
        """The live association (not a terminated one)."""
        async with translate_errors("reading an SM policy"):
            d = await self._c.find_one({"_id": sm_policy_id, **_LIVE})
        return from_doc(d) if d is not None else None

    async def take(self, sm_policy_id: str) -> StoredPolicy | None:
        """Remove the live association and return it (None: there is none): the read and
        the delete of a policy's end in one round trip, done once."""
        async with translate_errors("removing an SM policy"):
            d = await self._c.find_one_and_delete({"_id": sm_policy_id, **_LIVE})
        return from_doc(d) if d is not None else None

    async def get_any(self, sm_policy_id: str) -> Doc | None:
        """The document, live or terminated."""
        async with translate_errors("reading an SM policy"):
            return await self._c.find_one({"_id": sm_policy_id})

    async def opened_by(self, network: str, host: str, state_id: int, limit: int
                        ) -> list[str]:
        """The live associations a Diameter client opened before its restart to
        ``state_id`` (``nf.notify.port.left_behind``)."""
        async with translate_errors("reading SM policies"):
            docs = await self._c.find({**left_behind(network, host, state_id), **_LIVE},
                                      {"_id": 1}).limit(limit).to_list(None)
        return [str(d["_id"]) for d in docs]

    async def heads(self, ids: Sequence[str]) -> list[Doc]:
        """What the SMF must end up with for each policy: version, decision, tombstone."""
        async with translate_errors("reading SM policies"):
            return await self._c.find(
                {"_id": {"$in": list(ids)}},
                {"version": 1, "decision": 1, "ended": 1, "notificationUri": 1,
                 "resourceUri": 1, "supi": 1}).to_list(None)

    async def for_subscribers(self, supis: Sequence[str]) -> list[StoredPolicy]:
        """Every active policy of these subscribers, on any host network: one query."""
        if not supis:
            return []
        flt: Doc = {"supi": supis[0]} if len(supis) == 1 else {"supi": {"$in": list(supis)}}
        flt.update(_LIVE)
        async with translate_errors("reading SM policies"):
            docs = await self._c.find(flt).to_list(None)
        return [from_doc(d) for d in docs]

    async def due(self, now: datetime, limit: int) -> list[StoredPolicy]:
        """Policies whose decision expires (a boost ending) at or before ``now``."""
        async with translate_errors("reading SM policies due for revalidation"):
            docs = await self._c.find({"recheckAt": {"$lte": now}, **_LIVE}).limit(
                limit).to_list(None)
        return [from_doc(d) for d in docs]

    async def replace_state(self, new: PolicyState, expected_version: int,
                            decision: dict[str, Any] | None, now: datetime, *,
                            push: bool = False) -> bool:
        """Store ``new`` if the stored version is still ``expected_version``. ``push``
        marks the decision as owed to the SMF until ``settle`` (see ``owed``)."""
        s = new
        update: Doc = {
            "servingPlmn": s.serving_plmn, "roaming": s.roaming,
            "speed": {"ul": s.speed.uplink_kbps, "dl": s.speed.downlink_kbps},
            "reason": s.reason, "version": s.version, "recheckAt": s.recheck_at,
            "updatedAt": now,
        }
        if decision is not None:
            update["decision"] = decision
        if push:
            update["pushOwed"] = True
        async with translate_errors("updating an SM policy"):
            r = await self._c.update_one(
                {"_id": s.sm_policy_id, "version": expected_version, **_LIVE},
                {"$set": update})
        return r.matched_count == 1

    async def terminate(self, sm_policy_id: str, expected_version: int, new_version: int,
                        now: datetime) -> bool:
        """Turn the live association into a tombstone if it is still ``expected_version``."""
        async with translate_errors("terminating an SM policy"):
            r = await self._c.update_one(
                {"_id": sm_policy_id, "version": expected_version, **_LIVE},
                {"$set": {"ended": "terminated", "endedAt": now, "version": new_version,
                          "recheckAt": None, "updatedAt": now, "pushOwed": True}})
        return r.matched_count == 1

    async def settle(self, sm_policy_id: str, version: int) -> bool:
        """The push of ``version`` is in the outbox. False if the policy moved on to a
        newer version meanwhile (whose push may have been overtaken by this one)."""
        async with translate_errors("settling an SM policy push"):
            r = await self._c.update_one({"_id": sm_policy_id, "version": version},
                                         {"$unset": {"pushOwed": ""}})
        return r.matched_count == 1

    async def owed(self, older_than: datetime, limit: int) -> list[Doc]:
        """Policies whose last decision was stored but not confirmed in the outbox before
        ``older_than`` (the process died between the two, or the outbox refused it)."""
        async with translate_errors("reading SM policies owed a push"):
            return await self._c.find(
                {"pushOwed": True, "updatedAt": {"$lte": older_than}}).limit(
                limit).to_list(None)

    async def remove(self, sm_policy_id: str, expected_version: int | None = None) -> bool:
        flt: Doc = {"_id": sm_policy_id}
        if expected_version is not None:
            flt["version"] = expected_version
        async with translate_errors("removing an SM policy"):
            r = await self._c.delete_one(flt)
        return r.deleted_count == 1
