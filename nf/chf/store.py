"""Charging sessions in MongoDB (collection ``charging_sessions``), one document per
``ChargingDataRef``.

Every write is a single-document conditional update, so a late or concurrent request can
never move a session backwards: a request is stored only if its sequence number is higher
than the stored one, and only an open session is closed (once).

Each process keeps a bounded copy of the open sessions it last read or wrote (``cached``).
The copy is only a hint for the update path: its write (``advance(expect_isn=...)``) matches
only if the stored session is still exactly the one the copy describes, so a stale copy is
detected by the write and the caller re-reads. A copy is not offered once its supervision
deadline has passed (another process may have closed the session by then).

Each write may carry pending effects (``fx``: the step's EDR, see ``nf.effects``), pushed
by the same conditional update, so the state and its record are stored together or not
at all.

An update does not write here: it writes the session's *note* (``note_doc``: sequence
number, stored answer, per-rating-group flags, supervision deadline) on the subscriber's
wallet, in the ledger's own write (``Ledger.charge_noted``), so a warm update is one
database write. The document here holds what does not change and the state as of the
create (or of the last ``sync``); ``with_note`` lays a note over it. Supervision finds
sessions by the deadline stored here and consults the note before closing (``sync``
moves the deadline on); a release closes the session here and drops the note.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from nf.chf.core import Reply, RgState, Session
from nf.clock import utc
from nf.effects import FIELD as FX
from nf.store.mongo import Db, Doc, money_collection, translate_errors

COLLECTION = "charging_sessions"


def _to_doc(s: Session, now: datetime) -> Doc:
    return {
        "_id": s.ref, "supi": s.supi, "gpsi": s.gpsi, "brand": s.brand,
        "home_network": s.home_network, "home_plmn": s.home_plmn,
        "host_network": s.host_network, "serving_plmn": s.serving_plmn,
        "roaming": s.roaming, "notify_uri": s.notify_uri, "final_action": s.final_action,
        "topup_url": s.topup_url, "validity_time_s": s.validity_time_s,
        "isn": s.last_isn, "reply": _reply(s.reply), "rgs": _rgs(s),
        "expires_at": s.expires_at, "status": "open" if s.open else "closed",
        "created_at": now, "updated_at": now, "interface": s.interface,
    }


def _state(s: Session, now: datetime) -> Doc:
    """The fields a request changes (for a conditional ``$set``)."""
    d: Doc = {"isn": s.last_isn, "reply": _reply(s.reply), "rgs": _rgs(s),
              "expires_at": s.expires_at, "serving_plmn": s.serving_plmn,
              "roaming": s.roaming, "host_network": s.host_network,
              "validity_time_s": s.validity_time_s, "updated_at": now}
    if s.notify_uri:
        d["notify_uri"] = s.notify_uri
    return d


def _reply(r: Reply | None) -> Doc | None:
    return None if r is None else {"status": r.status, "body": r.body}


def _rgs(s: Session) -> Doc:
    return {str(rg): {"refused": st.refused, "final": st.final} for rg, st in s.rgs.items()}


def note_doc(s: Session) -> Doc:
    """What changes with every update, as kept on the wallet (the ledger adds ``i``, the
    sequence number, and ``s``, the SUPI)."""
    return {"r": _reply(s.reply), "g": _rgs(s), "e": s.expires_at, "sp": s.serving_plmn,
            "ro": s.roaming, "hn": s.host_network, "vt": s.validity_time_s,
            "nu": s.notify_uri}


def with_note(s: Session, n: Doc | None) -> Session:
    """``s`` (as stored here) with the wallet's note ``n`` laid over it."""
    if n is None:
        return replace(s, note_isn=None)
    isn = int(n["i"])
    if isn < s.last_isn:  # written here since (not by an update): this is newer
        return replace(s, note_isn=isn)
    return replace(
        s, last_isn=isn, note_isn=isn, reply=_reply_from(n.get("r")), rgs=_rgs_from(n.get("g")),
        expires_at=utc(n["e"]) if n.get("e") else s.expires_at,
        serving_plmn=n.get("sp", s.serving_plmn), roaming=bool(n.get("ro", s.roaming)),
        host_network=n.get("hn", s.host_network),
        validity_time_s=int(n.get("vt", s.validity_time_s)),
        notify_uri=n.get("nu") or s.notify_uri)


def _reply_from(d: Doc | None) -> Reply | None:
    return None if d is None else Reply(int(d["status"]), d.get("body"))


def _rgs_from(d: Doc | None) -> dict[int, RgState]:
    return {int(k): RgState(bool(v.get("refused")), bool(v.get("final")))
            for k, v in (d or {}).items()}


def from_doc(d: Doc) -> Session:
    return Session(
        ref=d["_id"], supi=d["supi"], gpsi=d.get("gpsi"), brand=d.get("brand", ""),
        home_network=d.get("home_network", ""), home_plmn=d.get("home_plmn", ""),
        host_network=d.get("host_network", ""), serving_plmn=d.get("serving_plmn", ""),
        roaming=bool(d.get("roaming")), notify_uri=d.get("notify_uri"),
        final_action=d.get("final_action", "TERMINATE"), topup_url=d.get("topup_url"),
        validity_time_s=int(d.get("validity_time_s", 3600)), last_isn=int(d["isn"]),
        reply=_reply_from(d.get("reply")), rgs=_rgs_from(d.get("rgs")),
        expires_at=utc(d["expires_at"]) if d.get("expires_at") else None,
        open=d.get("status") == "open", interface=d.get("interface", "sbi"),
    )


class SessionStore:
    def __init__(self, db: Db, cache_size: int = 10_000) -> None:
        self._coll = money_collection(db, COLLECTION)
        self._cache: OrderedDict[str, Session] = OrderedDict()
        self._cache_size = cache_size

    # -- the per-process copy -------------------------------------------------------------

    def cached(self, ref: str, now: datetime) -> Session | None:
        """This process's copy of an open session, if it has one and the session cannot
        have been closed by supervision yet; may be stale (see ``advance``)."""
        s = self._cache.get(ref)
        if s is None:
            return None
        if not s.open or s.expires_at is None or now >= s.expires_at:
            self._cache.pop(ref, None)
            return None
        self._cache.move_to_end(ref)
        return s

    def remember(self, s: Session) -> None:
        """Keep ``s`` as this process's copy (dropped if it is closed)."""
        if self._cache_size <= 0 or not s.open:
            self._cache.pop(s.ref, None)
            return
        self._cache[s.ref] = s
        self._cache.move_to_end(s.ref)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, ref: str) -> None:
        self._cache.pop(ref, None)

    async def ensure_indexes(self) -> None:
        async with translate_errors("charging session indexes"):
            await self._coll.create_index([("status", ASCENDING), ("expires_at", ASCENDING)],
                                          name="status_expires")
            await self._coll.create_index([("supi", ASCENDING), ("status", ASCENDING)],
                                          name="supi_status")

    async def get(self, ref: str) -> Session | None:
        async with translate_errors("charging session read"):
            d = await self._coll.find_one({"_id": ref})
        if d is None:
            self.forget(ref)
            return None
        # Not kept as this process's copy: without its note it may be behind (the caller
        # lays the note over it and keeps that: ``remember``).
        return from_doc(d)

    async def insert(self, s: Session, now: datetime, fx: Sequence[Doc] = ()) -> bool:
        """Store a new session (with pending effects ``fx``); False if it exists already
        (a retransmitted create)."""
        doc = _to_doc(s, now)
        doc[FX] = list(fx)  # even when empty (see ``nf.ledger.codec.wallet_doc``)
        async with translate_errors("charging session create"):
            try:
                await self._coll.insert_one(doc)
            except DuplicateKeyError:
                return False
        self.remember(s)
        return True

    async def advance(self, s: Session, now: datetime, *,
                      expect_isn: int | None = None, fx: Sequence[Doc] = ()) -> bool:
        """Store the session after request ``s.last_isn``; False if the session was closed
        meanwhile or a later request was stored first. With ``expect_isn``, only if the
        stored session is still open at exactly that sequence number (the state ``s`` was
        derived from)."""
        update: dict[str, Any] = {"$set": _state(s, now)}
        if fx:
            update["$push"] = {FX: {"$each": list(fx)}}
        isn: Any = {"$lt": s.last_isn} if expect_isn is None else expect_isn
        self.forget(s.ref)
        async with translate_errors("charging session update"):
            res = await self._coll.update_one(
                {"_id": s.ref, "status": "open", "isn": isn}, update)
        if res.modified_count != 1:
            return False
        self.remember(s)
        return True

    async def sync(self, s: Session, now: datetime) -> bool:
        """Store the state of ``s`` (a note laid over this document) here, so supervision
        sees its deadline; only forwards, and only while the session is open."""
        update: Doc = {"$set": _state(s, now)}
        async with translate_errors("charging session sync"):
            res = await self._coll.update_one(
                {"_id": s.ref, "status": "open", "isn": {"$lte": s.last_isn}}, update)
        return res.matched_count == 1

    async def close(self, ref: str, reason: str, now: datetime, *, isn: int | None = None,
                    reply: Reply | None = None, only_if_due: bool = False,
                    fx: Sequence[Doc] = ()) -> Session | None:
        """Close an open session once; returns it as it was, or None if it was not open
        (or, with ``only_if_due``, no longer due for supervision)."""
        query: dict[str, Any] = {"_id": ref, "status": "open"}
        if only_if_due:
            query["expires_at"] = {"$lte": now}
        if isn is not None:
            query["isn"] = {"$lt": isn}
        fields: dict[str, Any] = {"status": "closed", "close_reason": reason,
                                  "closed_at": now, "updated_at": now}
        if isn is not None:
            fields["isn"] = isn
            fields["reply"] = _reply(reply)
        update: dict[str, Any] = {"$set": fields}
        if fx:
            update["$push"] = {FX: {"$each": list(fx)}}
        self.forget(ref)
        async with translate_errors("charging session close"):
            d = await self._coll.find_one_and_update(
                query, update, return_document=ReturnDocument.BEFORE)
        return None if d is None else from_doc(d)

    async def due(self, now: datetime, limit: int) -> list[str]:
        async with translate_errors("charging session supervision"):
            cursor = self._coll.find({"status": "open", "expires_at": {"$lte": now}},
                                     {"_id": 1}).limit(limit)
            return [d["_id"] async for d in cursor]

    async def open_for(self, supis: Sequence[str]) -> list[Session]:
        async with translate_errors("charging session lookup"):
            cursor = self._coll.find({"supi": {"$in": list(supis)}, "status": "open"})
            return [from_doc(d) async for d in cursor]

    async def purge_closed(self, before: datetime) -> int:
        async with translate_errors("charging session purge"):
            # Never one whose EDR is still pending.
            res = await self._coll.delete_many({"status": "closed",
                                                "closed_at": {"$lt": before},
                                                f"{FX}.at": {"$exists": False}})
        return res.deleted_count


def retention_cutoff(now: datetime, keep_s: float) -> datetime:
    return now - timedelta(seconds=keep_s)
