"""Where a Diameter session's pushes go, which service resource an Sy session stands
for, and the sessions a client left behind when it restarted.

A Gx or Gy session costs nothing here on its hot path: its service resource has an id
derived from the host network and the Session-Id (``gx_ref``, ``gy_wire.charging_ref``),
its notification URI carries where its RAR goes (``notification_uri``: the peer, and the
client's own Origin-Host and Realm behind a DRA), and the client's Origin-State-Id rides
the service's own document (``nf.notify.port.Client``). The map of sessions
(``diameter_sessions``: per application, host network and Session-Id, the resource id,
the subscriber, the client and its Origin-State-Id) is kept for Sy, whose requests after
the first carry the Session-Id only, and is read for the Gx and Gy sessions an earlier
version opened (on a miss, and when their client restarts). It never holds money or
policy state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from pymongo import ASCENDING

from nf.clock import Clock
from nf.diameter.base import StateIds
from nf.notify.port import DIAMETER_SCHEME
from nf.store.mongo import Db, Doc, money_collection, translate_errors

COLLECTION = "diameter_sessions"

# A service's lookup of the resources a Diameter client opened under an Origin-State-Id
# below the given one (``PcfService.opened_by``, ``ChargingService.opened_by``).
OpenedBy = Callable[[str, str, int], Awaitable[list[str]]]


def notification_uri(peer_host: str, session_id: str, client_host: str,
                     client_realm: str) -> str:
    """Where the services send this session's pushes:
    ``diameter://<peer>/<Session-Id>/<client Origin-Host>/<client Origin-Realm>``. The
    outbox hands an entry with this URI (and what it is appended) to the process holding
    ``peer_host``'s connection (``nf.diameter.push``), which addresses it to the client."""
    return DIAMETER_SCHEME + "/".join(quote(p, safe="") for p in (
        peer_host, session_id, client_host, client_realm))


def gx_ref(network_id: str, session_id: str) -> str:
    """The PCF's id of a Gx session's SM policy association: derived from the Session-Id
    and the host network of the peer that sent it (as ``gy_wire.charging_ref``), so a
    CCR-U or CCR-T reaches it with no lookup, and a peer of another host network that
    names the Session-Id finds none."""
    key = f"{network_id}|{session_id}".encode()
    return "gx" + hashlib.blake2b(key, digest_size=15).hexdigest()


@dataclass(frozen=True)
class Session:
    app: str  # "gx" | "sy" | "gy"
    network: str  # the host network of the peer it came over: only its peers reach it
    session_id: str
    ref: str  # smPolicyId (Gx), subscription id (Sy) or chargingDataRef (Gy)
    supi: str
    peer: str  # the connected peer it came over (the PCEF itself, or a DRA)
    # The client's own Origin-Host and Origin-Realm (behind a DRA: not the peer's): the
    # Destination-Host and Destination-Realm of the RAR / SNR sent for the session.
    origin_host: str
    origin_realm: str
    # The client's Origin-State-Id when it opened the session (None: it sent none).
    state_id: int | None = None


@dataclass(frozen=True)
class Local:
    """This NF's side of a Diameter policy application (Gx, Sy): where its sessions are
    kept, its clock, its Diameter identity, and the API root the services name their
    resources under."""

    sessions: SessionMap
    clock: Clock
    origin_host: str
    origin_realm: str
    api_root: str


class SessionMap:
    def __init__(self, db: Db) -> None:
        self._c = money_collection(db, COLLECTION)

    async def ensure_indexes(self) -> None:
        async with translate_errors("diameter_sessions indexes"):
            await self._c.create_index([("host", ASCENDING), ("state", ASCENDING)],
                                       name="host_state")

    async def put(self, s: Session, now: datetime) -> None:
        async with translate_errors("storing a diameter session"):
            await self._c.replace_one(
                {"_id": _key(s.app, s.network, s.session_id)},
                {"app": s.app, "net": s.network, "sid": s.session_id, "ref": s.ref,
                 "supi": s.supi,
                 "peer": s.peer, "host": s.origin_host, "realm": s.origin_realm,
                 "state": s.state_id, "createdAt": now},
                upsert=True)

    async def get(self, app: str, network: str, session_id: str) -> Session | None:
        """The session ``session_id`` of a peer of ``network`` (None for another
        network's: a peer cannot reach the sessions of another host network)."""
        async with translate_errors("reading a diameter session"):
            doc = await self._c.find_one({"_id": _key(app, network, session_id)})
        return None if doc is None else _session(app, network, session_id, doc)

    async def older(self, app: str, network: str, origin_host: str, state_id: int,
                    limit: int = 1000) -> list[Session]:
        """The sessions ``origin_host`` opened with an Origin-State-Id below ``state_id``:
        it restarted since, so they no longer exist there (RFC 6733 §8.16)."""
        async with translate_errors("reading diameter sessions"):
            docs = await self._c.find({"host": origin_host, "state": {"$lt": state_id},
                                       "app": app, "net": network}).to_list(limit)
        return [_session(app, network, str(d["sid"]), d) for d in docs]

    async def remove(self, app: str, network: str, session_id: str) -> None:
        async with translate_errors("removing a diameter session"):
            await self._c.delete_one({"_id": _key(app, network, session_id)})


def _key(app: str, network: str, session_id: str) -> str:
    return f"{app}:{network}:{session_id}"


def _session(app: str, network: str, session_id: str, doc: Doc) -> Session:
    peer = str(doc["peer"])
    state = doc.get("state")
    return Session(app, network, session_id, str(doc["ref"]), str(doc["supi"]), peer,
                   str(doc.get("host") or peer), str(doc.get("realm") or ""),
                   int(state) if state is not None else None)


class Restarts:
    """Notices a client's Origin-State-Id going up (it restarted) once per process and
    value (``nf.diameter.base.StateIds``), bounded to ``max_clients``, and releases what
    it left behind (``release``)."""

    def __init__(self, sessions: SessionMap | None, app: str, max_clients: int = 10_000
                 ) -> None:
        self._sessions = sessions  # None: no map to look in
        self._app = app
        self._ids = StateIds(max_clients)

    async def release(self, network: str, origin_host: str, state_id: int | None, *,
                      end: Callable[[str], Awaitable[object]],
                      opened_by: OpenedBy | None = None) -> None:
        """For a request or CER that shows a restart not yet acted on (mostly none: then
        nothing is read): ``end`` each service resource the client opened before, those
        the service finds by the client kept on them (``opened_by``) and those the map
        holds (Sy's, and Gx and Gy sessions of an earlier version), whose entries go."""
        if state_id is None or not self._ids.restarted(network, origin_host, state_id):
            return
        if opened_by is not None:
            for ref in await opened_by(network, origin_host, state_id):
                await end(ref)
        if self._sessions is not None:
            for s in await self._sessions.older(self._app, network, origin_host, state_id):
                await end(s.ref)
                await self._sessions.remove(self._app, s.network, s.session_id)
        self._ids.acted(network, origin_host, state_id)
