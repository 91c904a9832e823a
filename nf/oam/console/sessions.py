"""Console sessions kept on the server, so that ending one ends it everywhere.

The cookie carries only a random session id (signed, like every Quart session); the
record behind it (``console_sessions``, keyed by the id's SHA-256, so a database reader
holds no usable cookie) says who is signed in: the key id, its scope and the CSRF token.
A session ends when its record is gone or refused:

- sign-out deletes the record (a copy of the cookie taken before is worth nothing after);
- an admin signs out every session of a brand (``end_brand``);
- a record whose key id no longer has its scope among the configured keys (a key rotated
  or removed) is refused and deleted;
- ``session_ttl_s`` after sign-in (absolute), or after ``idle_timeout_s`` without a
  request (idle), both read from the injected clock.

One read by ``_id`` per console request; the last-seen time is written at most every
``touch_every_s`` (so the idle timeout is exact to that much). A TTL index on
``expires_at`` removes what nobody signs out of; it is housekeeping only, the clock check
above is what refuses a session.

``check`` is the pure decision; ``ConsoleSessions`` is the store around it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from pymongo import ASCENDING

from nf.store.mongo import Db, Doc, translate_errors

COLLECTION = "console_sessions"


class Verdict(Enum):
    OK = "ok"
    TOUCH = "touch"  # valid; write the new last-seen time
    ENDED = "ended"  # past its absolute end
    IDLE = "idle"  # no request for longer than the idle timeout
    KEY = "key"  # its key no longer exists, or no longer has this scope


@dataclass(frozen=True)
class Session:
    key_id: str
    scope: str
    csrf: str
    seen_at: datetime
    ends_at: datetime


def check(s: Session, scopes: Mapping[str, str], now: datetime, *, idle_s: float,
          touch_every_s: float) -> Verdict:
    """Whether a stored session still stands at ``now`` (``scopes``: key id -> scope of
    the keys configured now)."""
    if scopes.get(s.key_id) != s.scope:
        return Verdict.KEY
    if now >= s.ends_at:
        return Verdict.ENDED
    idle = (now - s.seen_at).total_seconds()
    if idle >= idle_s:
        return Verdict.IDLE
    return Verdict.TOUCH if idle >= touch_every_s else Verdict.OK


def _hash(sid: str) -> str:
    return hashlib.sha256(b"console-session:" + sid.encode()).hexdigest()


def _decode(d: Doc) -> Session | None:
    kid, scope, csrf = d.get("kid"), d.get("scope"), d.get("csrf")
    seen, ends = d.get("seen_at"), d.get("ends_at")
    if not (isinstance(kid, str) and isinstance(scope, str) and isinstance(csrf, str)
            and isinstance(seen, datetime) and isinstance(ends, datetime)):
        return None
    return Session(kid, scope, csrf, seen, ends)


class ConsoleSessions:
    def __init__(self, db: Db, *, ttl_s: float, idle_s: float) -> None:
        self._coll = db[COLLECTION]
        self.ttl = timedelta(seconds=ttl_s)
        self.idle = timedelta(seconds=idle_s)
        # Last-seen writes: often enough that the idle timeout is exact to a tenth of it
        # (at most a minute), rarely enough that most requests are one read.
        self.touch_every_s = min(60.0, idle_s / 10)

    async def ensure_indexes(self) -> None:
        async with translate_errors("console session indexes"):
            await self._coll.create_index([("expires_at", ASCENDING)],
                                          name="expires_at_ttl", expireAfterSeconds=0)
            await self._coll.create_index([("scope", ASCENDING)], name="scope")

    def _expires(self, seen: datetime, ends: datetime) -> datetime:
        return min(ends, seen + self.idle)

    async def open(self, key_id: str, scope: str, csrf: str, now: datetime) -> str:
        """A new session; returns the id for the cookie (only its hash is stored)."""
        sid = secrets.token_urlsafe(32)
        ends = now + self.ttl
        async with translate_errors("console sign-in"):
            await self._coll.insert_one({
                "_id": _hash(sid), "kid": key_id, "scope": scope, "csrf": csrf,
                "created_at": now, "seen_at": now, "ends_at": ends,
                "expires_at": self._expires(now, ends)})
        return sid

    async def current(self, sid: str, scopes: Mapping[str, str], now: datetime
                      ) -> Session | None:
        """The session ``sid`` stands for, if it still stands at ``now``; a session found
        ended (its time, idle, its key) is deleted."""
        async with translate_errors("console session read"):
            d = await self._coll.find_one({"_id": _hash(sid)})
        s = _decode(d) if d is not None else None
        if s is None:
            return None
        verdict = check(s, scopes, now, idle_s=self.idle.total_seconds(),
                        touch_every_s=self.touch_every_s)
        if verdict in (Verdict.ENDED, Verdict.IDLE, Verdict.KEY):
            await self.end(sid)
            return None
        if verdict is Verdict.TOUCH:
            async with translate_errors("console session touch"):
                await self._coll.update_one(
                    {"_id": _hash(sid)},
                    {"$set": {"seen_at": now, "expires_at": self._expires(now, s.ends_at)}})
        return s

    async def end(self, sid: str) -> None:
        async with translate_errors("console sign-out"):
            await self._coll.delete_one({"_id": _hash(sid)})

    async def end_brand(self, brand: str) -> int:
        """Signs out every session of ``brand`` (``*``: every admin session); how many."""
        async with translate_errors("console brand sign-out"):
            r = await self._coll.delete_many({"scope": brand})
        return int(r.deleted_count)
