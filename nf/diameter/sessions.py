"""Which service resource a Diameter session of Gx or Sy stands for.

Its one job: remember, per (application, Session-Id), the id the service gave the session
(the PCF's ``smPolicyId``, the spending-limit subscription id), its subscriber and who to
address pushes to (the client's Origin-Host and Realm, maybe behind a DRA), because
a peer's later requests (CCR-U/T, SLR intermediate, STR) carry the Session-Id only. One
document per live session in ``diameter_sessions``; it never holds money or policy state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from nf.notify.port import DIAMETER_SCHEME
from nf.store.mongo import Db, money_collection, translate_errors

COLLECTION = "diameter_sessions"


def notification_uri(origin_host: str, session_id: str) -> str:
    """Where the services send this session's pushes: the outbox hands an entry with this
    URI to the process holding ``origin_host``'s connection (``nf.diameter.push``)."""
    return f"{DIAMETER_SCHEME}{quote(origin_host, safe='')}/{quote(session_id, safe='')}"


@dataclass(frozen=True)
class Session:
    app: str  # "gx" | "sy"
    session_id: str
    ref: str  # smPolicyId (Gx) or subscription id (Sy)
    supi: str
    peer: str  # the connected peer it came over (the PCEF itself, or a DRA)
    # The client's own Origin-Host and Origin-Realm (behind a DRA: not the peer's): the
    # Destination-Host and Destination-Realm of the RAR / SNR sent for the session.
    origin_host: str
    origin_realm: str


class SessionMap:
    def __init__(self, db: Db) -> None:
        self._c = money_collection(db, COLLECTION)

    async def put(self, s: Session, now: datetime) -> None:
        async with translate_errors("storing a diameter session"):
            await self._c.replace_one(
                {"_id": f"{s.app}:{s.session_id}"},
                {"ref": s.ref, "supi": s.supi, "peer": s.peer, "host": s.origin_host,
                 "realm": s.origin_realm, "createdAt": now},
                upsert=True)

    async def get(self, app: str, session_id: str) -> Session | None:
        async with translate_errors("reading a diameter session"):
            doc = await self._c.find_one({"_id": f"{app}:{session_id}"})
        if doc is None:
            return None
        peer = str(doc["peer"])
        return Session(app, session_id, str(doc["ref"]), str(doc["supi"]), peer,
                       str(doc.get("host") or peer), str(doc.get("realm") or ""))

    async def remove(self, app: str, session_id: str) -> None:
        async with translate_errors("removing a diameter session"):
            await self._c.delete_one({"_id": f"{app}:{session_id}"})
