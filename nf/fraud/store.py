"""MongoDB documents of fraud protection: rule state, cases and the reader's checkpoint.

- ``fraud_state``: one document per subscriber (``_id`` the SUPI) holding ``SubState``,
  written with a version condition; ``exp`` (TTL) drops a subscriber nothing happened to
  for a while, ``due`` says when a waiting rule should look again.
- ``fraud_cases``: one document per case (``_id`` deterministic from the detection);
  resolved cases expire (``exp``, TTL). ``action_state``/``lift_state`` ``owed`` mark a
  mitigation decided but not yet applied or lifted: whoever finds one finishes it.
- ``fraud_cursor``: the EDR reader's checkpoint (``hi_t``, ``hi_id``: the last record
  read, in ``(time, _id)`` order) and its lease (``owner``, ``until``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from nf.clock import utc
from nf.fraud.rules import Sess, SubState
from nf.store.mongo import Db, Doc, translate_errors

STATE = "fraud_state"
CASES = "fraud_cases"
CURSOR = "fraud_cursor"
EDRS = "edrs"
_DUP = 11000
# The EDR fields the rules read (a charging record's per-rating-group detail is left out).
EDR_FIELDS = {k: 1 for k in (
    "kind", "event", "time", "supi", "brand", "host_network", "serving_plmn",
    "pdu_session_id", "charging_data_ref", "sm_policy_id", "used_total", "result",
    "offer_id")}


def _dt(v: Any) -> datetime | None:
    return None if v is None else utc(v)


def _sess(v: list[Any]) -> Sess:
    """A stored session: seven fields, then (since PDU sessions are paired) when it was
    released and its peer; a session stored without them is open and paired on its next
    record."""
    k, kind, hn, sp, pdu, o, s = v[:7]
    closed, peer = (v[7], v[8]) if len(v) > 8 else (None, None)
    return Sess(k, kind, hn, sp, pdu, utc(o), utc(s), _dt(closed), peer)


def state_doc(st: SubState, expires_at: datetime, due: datetime | None) -> Doc:
    return {
        "_id": st.supi, "v": st.version, "b": st.brand,
        "s": [[s.key, s.kind, s.host_network, s.serving_plmn, s.pdu, s.opened_at, s.seen_at,
               s.closed_at, s.peer] for s in st.sessions],
        "c": st.country, "p": st.plmn, "ca": st.country_at,
        "u": [[t, n] for t, n in st.usage], "pu": list(st.purchases),
        "o": [[r, c] for r, c in st.open], "q": [[r, u] for r, u in st.quiet],
        "a": [[i, t] for i, t in st.applied], "exp": expires_at, "due": due,
    }


def state_from(d: Doc) -> SubState:
    return SubState(
        supi=d["_id"], version=d.get("v", 0), brand=d.get("b"),
        sessions=tuple(_sess(x) for x in d.get("s", [])),
        country=d.get("c"), plmn=d.get("p"), country_at=_dt(d.get("ca")),
        usage=tuple((utc(t), n) for t, n in d.get("u", [])),
        purchases=tuple(utc(t) for t in d.get("pu", [])),
        open=tuple((r, c) for r, c in d.get("o", [])),
        quiet=tuple((r, utc(u)) for r, u in d.get("q", [])),
        applied=tuple((i, utc(t)) for i, t in d.get("a", [])))


class FraudStore:
    def __init__(self, db: Db) -> None:
        self.states = db[STATE]
        self.cases = db[CASES]
        self.cursor = db[CURSOR]
        self.edrs = db[EDRS]

    async def ensure_indexes(self) -> None:
        async with translate_errors("fraud indexes"):
            await self.states.create_index([("exp", ASCENDING)], name="ttl",
                                           expireAfterSeconds=0)
            await self.states.create_index([("due", ASCENDING)], name="due", sparse=True)
            await self.cases.create_index([("brand", ASCENDING), ("opened_at", DESCENDING)],
                                          name="brand_opened")
            await self.cases.create_index([("supi", ASCENDING), ("opened_at", DESCENDING)],
                                          name="supi_opened")
            await self.cases.create_index([("action_state", ASCENDING)], name="owed",
                                          sparse=True)
            await self.cases.create_index([("lift_state", ASCENDING)], name="lift_owed",
                                          sparse=True)
            await self.cases.create_index([("exp", ASCENDING)], name="ttl",
                                          expireAfterSeconds=0)
            # The reader walks the EDRs in (time, _id) order.
            await self.edrs.create_index([("time", ASCENDING), ("_id", ASCENDING)],
                                         name="time_id")

    # -- the reader's lease and checkpoint ------------------------------------------------

    async def lease(self, owner: str, now: datetime, lease_s: float) -> Doc | None:
        """Take or renew the reader's lease; the cursor document if ours, else None."""
        until = now + timedelta(seconds=lease_s)
        async with translate_errors("fraud lease"):
            try:
                got: Doc | None = await self.cursor.find_one_and_update(
                    {"_id": "edrs", "$or": [{"owner": owner}, {"until": {"$lt": now}},
                                            {"owner": None}]},
                    {"$set": {"owner": owner, "until": until}},
                    upsert=True, return_document=True)
            except DuplicateKeyError:
                return None  # someone else holds it
        return got

    async def checkpoint(self, owner: str, hi_t: datetime, hi_id: Any) -> bool:
        async with translate_errors("fraud checkpoint"):
            r = await self.cursor.update_one({"_id": "edrs", "owner": owner},
                                             {"$set": {"hi_t": hi_t, "hi_id": hi_id}})
        return r.matched_count == 1

    async def release(self, owner: str) -> None:
        async with translate_errors("fraud lease release"):
            await self.cursor.update_one({"_id": "edrs", "owner": owner},
                                         {"$set": {"owner": None}})

    async def edrs_after(self, hi_t: datetime | None, hi_id: Any, limit: int) -> list[Doc]:
        """EDRs after ``(hi_t, hi_id)`` in ``(time, _id)`` order; every one from ``hi_t``
        on when ``hi_id`` is None; every one when ``hi_t`` is None."""
        if hi_t is None:
            q: Doc = {}
        elif hi_id is None:
            q = {"time": {"$gte": hi_t}}
        else:
            q = {"$or": [{"time": {"$gt": hi_t}}, {"time": hi_t, "_id": {"$gt": hi_id}}]}
        async with translate_errors("fraud read edrs"):
            cur = self.edrs.find(q, EDR_FIELDS,
                                 sort=[("time", ASCENDING), ("_id", ASCENDING)], limit=limit)
            return [d async for d in cur]

    async def edr_ids_between(self, lo: datetime, hi: datetime, limit: int
                              ) -> list[tuple[Any, datetime]]:
        async with translate_errors("fraud late scan"):
            cur = self.edrs.find({"time": {"$gte": lo, "$lte": hi}}, {"_id": 1, "time": 1},
                                 sort=[("time", ASCENDING), ("_id", ASCENDING)],
                                 limit=limit)
            return [(d["_id"], utc(d["time"])) async for d in cur]

    async def edrs_by_id(self, ids: Sequence[Any]) -> list[Doc]:
        async with translate_errors("fraud read edrs"):
            cur = self.edrs.find({"_id": {"$in": list(ids)}}, EDR_FIELDS,
                                 sort=[("time", ASCENDING), ("_id", ASCENDING)])
            return [d async for d in cur]

    # -- rule state -----------------------------------------------------------------------

    async def load_states(self, supis: Iterable[str]) -> dict[str, SubState]:
        async with translate_errors("fraud state read"):
            cur = self.states.find({"_id": {"$in": list(supis)}})
            return {d["_id"]: state_from(d) async for d in cur}

    async def save_states(self, items: Sequence[tuple[SubState, datetime, datetime | None]]
                          ) -> list[str]:
        """Write each state if its stored version is still the one read (``version``);
        the stored version becomes ``version + 1``. Returns the SUPIs that lost a race."""
        if not items:
            return []
        ops = []
        for st, exp, due in items:
            doc = state_doc(st, exp, due)
            doc["v"] = st.version + 1
            flt: Doc = {"_id": st.supi, "v": st.version} if st.version else \
                {"_id": st.supi, "v": {"$exists": False}}
            ops.append(ReplaceOne(flt, doc, upsert=True))
        async with translate_errors("fraud state write"):
            try:
                await self.states.bulk_write(ops, ordered=False)
            except BulkWriteError as e:
                errs = e.details.get("writeErrors", [])
                if any(x.get("code") != _DUP for x in errs):
                    raise
                return [items[x["index"]][0].supi for x in errs]
        return []

    async def due_states(self, now: datetime, limit: int) -> list[SubState]:
        async with translate_errors("fraud due states"):
            cur = self.states.find({"due": {"$lte": now}}, limit=limit)
            return [state_from(d) async for d in cur]

    async def update_state(self, supi: str, fn: Any, now: datetime, ttl: timedelta,
                           attempts: int = 20) -> None:
        """Read-modify-write one state (``fn(SubState) -> SubState``), retried on races."""
        for _ in range(attempts):
            got = await self.load_states([supi])
            st = got.get(supi)
            if st is None:
                return
            new = fn(st)
            lost = await self.save_states([(new, now + ttl, None)])
            if not lost:
                return

    # -- cases ----------------------------------------------------------------------------

    async def insert_cases(self, docs: Sequence[Doc]) -> list[str]:
        """Insert new cases; a case already stored (a re-read EDR) is left alone. Returns
        the ids inserted now."""
        if not docs:
            return []
        dup: set[str] = set()
        async with translate_errors("fraud case insert"):
            try:
                await self.cases.insert_many(list(docs), ordered=False)
            except BulkWriteError as e:
                errs = e.details.get("writeErrors", [])
                if any(x.get("code") != _DUP for x in errs):
                    raise
                dup = {str(docs[x["index"]]["_id"]) for x in errs}
        return [str(d["_id"]) for d in docs if str(d["_id"]) not in dup]

    async def case(self, case_id: str) -> Doc | None:
        async with translate_errors("fraud case read"):
            got: Doc | None = await self.cases.find_one({"_id": case_id})
        return got

    async def set_case(self, case_id: str, cond: Doc, sets: Doc, audit: Doc | None = None
                       ) -> Doc | None:
        upd: Doc = {"$set": sets}
        if audit is not None:
            upd["$push"] = {"audit": audit}
        async with translate_errors("fraud case update"):
            got: Doc | None = await self.cases.find_one_and_update(
                {"_id": case_id, **cond}, upd, return_document=True)
        return got

    async def find_cases(self, q: Doc, limit: int, skip: int = 0) -> list[Doc]:
        async with translate_errors("fraud case query"):
            cur = self.cases.find(q, sort=[("opened_at", DESCENDING), ("_id", ASCENDING)],
                                  limit=limit, skip=skip)
            return [d async for d in cur]

    async def open_with(self, supi: str, applied: str, but: str) -> bool:
        """Does another open case of ``supi`` hold the mitigation ``applied``?"""
        async with translate_errors("fraud case query"):
            got = await self.cases.find_one({"supi": supi, "status": "open",
                                             "applied": applied, "_id": {"$ne": but}})
        return got is not None

    async def open_by_brand(self) -> dict[str, int]:
        """How many cases are open, by brand (``unknown``: a case without one)."""
        async with translate_errors("fraud open cases"):
            cur = await self.cases.aggregate([
                {"$match": {"status": "open"}},
                {"$group": {"_id": "$brand", "n": {"$sum": 1}}}])
            return {str(d["_id"] or "unknown"): int(d["n"]) async for d in cur}

    async def owed(self, before: datetime, limit: int) -> list[Doc]:
        async with translate_errors("fraud owed cases"):
            cur = self.cases.find({"$or": [{"action_state": "owed"}, {"lift_state": "owed"}],
                                   "updated_at": {"$lt": before}}, limit=limit)
            return [d async for d in cur]
