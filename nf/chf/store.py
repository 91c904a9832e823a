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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from nf.chf.core import Reply, RgState, Session
from nf.clock import utc
from nf.effects import FIELD as FX
from nf.notify.port import CLIENT_FIELD, CLIENT_INDEX, Client, left_behind
from nf.store.mongo import Db, Doc, money_collection, translate_errors

COLLECTION = "charging_sessions"


@dataclass(frozen=True, slots=True)
class _Field:
    """One field of a charging session: its ``Session`` attribute, its key in the session
    document (``long``) and in the wallet's note (``short``; None: not in the note, which
    only holds what a step changes), how it is encoded and decoded (None: as it is), and
    the value of a document that lacks it (or holds None)."""

    attr: str
    long: str
    short: str | None = None
    enc: Callable[[Any], Any] | None = None
    dec: Callable[[Any], Any] | None = None
    default: Any = None
    required: bool = False
    step: bool = False  # a step changes it, though the note does not hold it
    blank_unset: bool = False  # a blank value is not stored by a step, nor laid over one


def _reply(r: Reply | None) -> Doc | None:
    return None if r is None else {"status": r.status, "body": r.body}


def _reply_from(d: Doc) -> Reply:
    return Reply(int(d["status"]), d.get("body"))


def _rgs(rgs: Mapping[int, RgState]) -> Doc:
    return {str(rg): {"refused": st.refused, "final": st.final} for rg, st in rgs.items()}


def _rgs_from(d: Doc) -> dict[int, RgState]:
    return {int(k): RgState(bool(v.get("refused")), bool(v.get("final"))) for k, v in d.items()}


def _client(c: Client | None) -> Doc | None:
    return None if c is None else c.doc()


def _client_from(d: Doc) -> Client:
    return Client(str(d["net"]), str(d["host"]), int(d["state"]))


def _status(is_open: bool) -> str:
    return "open" if is_open else "closed"


def _is_open(v: Any) -> bool:
    return bool(v == "open")


# The one list of a session's fields. The wallet's note also holds the step's sequence
# number (``i``) and the SUPI (``s``): the ledger writes them (``nf.ledger.steps``).
_FIELDS = (
    _Field("ref", "_id", required=True),
    _Field("supi", "supi", required=True),
    _Field("gpsi", "gpsi"),
    _Field("brand", "brand", default=""),
    _Field("home_network", "home_network", default=""),
    _Field("home_plmn", "home_plmn", default=""),
    _Field("host_network", "host_network", "hn", default=""),
    _Field("serving_plmn", "serving_plmn", "sp", default=""),
    _Field("roaming", "roaming", "ro", dec=bool, default=False),
    _Field("notify_uri", "notify_uri", "nu", blank_unset=True),
    _Field("final_action", "final_action", default="TERMINATE"),
    _Field("topup_url", "topup_url"),
    _Field("validity_time_s", "validity_time_s", "vt", dec=int, default=3600),
    _Field("last_isn", "isn", dec=int, required=True, step=True),
    _Field("reply", "reply", "r", enc=_reply, dec=_reply_from),
    _Field("rgs", "rgs", "g", enc=_rgs, dec=_rgs_from, default=MappingProxyType({})),
    _Field("expires_at", "expires_at", "e", dec=utc),
    _Field("open", "status", enc=_status, dec=_is_open, default=False),
    # Where the session's requests come from: "sbi" (Nchf) or "gy" (Diameter).
    _Field("interface", "interface", default="sbi"),
    # The Diameter client that opened it (Gy): written by the create only, for a restart.
    _Field("client", CLIENT_FIELD, enc=_client, dec=_client_from),
)
_STEP = tuple(f for f in _FIELDS if f.short is not None or f.step)
_NOTED = tuple(f for f in _FIELDS if f.short is not None)


def _encoder(fields: tuple[_Field, ...], keys: tuple[str, ...]) -> Callable[[Session], Doc]:
    """The map of ``fields`` from a session to a document with ``keys``."""
    get = attrgetter(*(f.attr for f in fields))
    encs = tuple((i, f.enc) for i, f in enumerate(fields) if f.enc is not None)

    def encode(s: Session) -> Doc:
        values = list(get(s))
        for i, enc in encs:
            values[i] = enc(values[i])
        return dict(zip(keys, values, strict=True))

    return encode


_session_doc = _encoder(_FIELDS, tuple(f.long for f in _FIELDS))
_step_doc = _encoder(_STEP, tuple(f.long for f in _STEP))
note_doc = _encoder(_NOTED, tuple(f.short or "" for f in _NOTED))
note_doc.__doc__ = """What changes with every update, as kept on the wallet (the ledger adds ``i``,
the sequence number, and ``s``, the SUPI)."""


def _to_doc(s: Session, now: datetime) -> Doc:
    d = _session_doc(s)
    if d[CLIENT_FIELD] is None:  # only a Diameter client's session has one (sparse index)
        del d[CLIENT_FIELD]
    d["created_at"] = d["updated_at"] = now
    return d


def _state(s: Session, now: datetime) -> Doc:
    """The fields a request changes (for a conditional ``$set``)."""
    d = _step_doc(s)
    for f in _STEP:
        if f.blank_unset and not d[f.long]:
            del d[f.long]
    d["updated_at"] = now
    return d


def _decoded(f: _Field, v: Any) -> Any:
    return v if f.dec is None else f.dec(v)


def with_note(s: Session, n: Doc | None) -> Session:
    """``s`` (as stored here) with the wallet's note ``n`` laid over it."""
    if n is None:
        return replace(s, note_isn=None)
    isn = int(n["i"])
    if isn < s.last_isn:  # written here since (not by an update): this is newer
        return replace(s, note_isn=isn)
    over: dict[str, Any] = {"last_isn": isn, "note_isn": isn}
    for f in _NOTED:
        v = n.get(f.short or "")
        if v is not None and (v or not f.blank_unset):
            over[f.attr] = _decoded(f, v)
    return replace(s, **over)


def from_doc(d: Doc) -> Session:
    kw: dict[str, Any] = {}
    for f in _FIELDS:
        v = d[f.long] if f.required else d.get(f.long)
        kw[f.attr] = f.default if v is None else _decoded(f, v)
    return Session(**kw)


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
            # A Diameter client's restart: the sessions it opened before (rare).
            await self._coll.create_index(CLIENT_INDEX, name="by_client", sparse=True)

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

    async def opened_by(self, network: str, host: str, state_id: int, limit: int = 1000
                        ) -> list[str]:
        """The open sessions a Diameter client opened before it restarted (its
        Origin-State-Id went up to ``state_id``: ``nf.notify.port.left_behind``)."""
        async with translate_errors("charging session lookup"):
            cursor = self._coll.find({**left_behind(network, host, state_id),
                                      "status": "open"}, {"_id": 1}).limit(limit)
            return [str(d["_id"]) async for d in cursor]

    async def purge_closed(self, before: datetime) -> int:
        async with translate_errors("charging session purge"):
            # Never one whose EDR is still pending.
            res = await self._coll.delete_many({"status": "closed",
                                                "closed_at": {"$lt": before},
                                                f"{FX}.at": {"$exists": False}})
        return res.deleted_count


def retention_cutoff(now: datetime, keep_s: float) -> datetime:
    return now - timedelta(seconds=keep_s)
