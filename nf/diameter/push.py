"""Server-initiated Diameter requests: the outbox's ``diameter://`` entries sent as Gx RAR,
Sy SNR and Gy RAR / ASR by the process that holds the peers' connections.

Its one job is delivery. The PCF, the spending-limit service and the CHF enqueue their
pushes as they do for the SBI (an ``SmPolicyNotification``, a termination, a
``SpendingLimitStatus``, a re-authorisation or abort of charging) with the session's
``diameter://<peer Origin-Host>/<Session-Id>/<client Origin-Host>/<client Origin-Realm>/
<what>`` URI. This worker claims the entries of the peers connected here, translates each
body into its request (addressed to the client's own Origin-Host and Realm, read from the
URI: a DRA peer may relay it; a URI of an earlier version names the peer only, and the
session map gives the client), sends it and settles the
entry with the HTTP sender's outcomes: 2xxx sent; 5002 (the peer no longer has the
session) gone, which ends the session through the service's gone-handler; no connection,
no answer or a 3xxx/4xxx retried later with backoff; another 5xxx dead. A push
whose peer is connected to no process (of any NF instance) is failed one try at a time
after a grace, so it ends dead like an unreachable HTTP peer's instead of piling up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from nf import logs
from nf.clock import Clock, until_woken
from nf.diameter import codec, gx, gy, gy_wire, sy
from nf.diameter.base import APP_GX, APP_SY, PeerInfo
from nf.diameter.codec import VENDOR_3GPP, Avp, Message
from nf.diameter.sessions import SessionMap
from nf.diameter.umi import UsageMonitor
from nf.errors import NfError
from nf.notify.outbox import MongoOutbox
from nf.notify.policy import Outcome
from nf.notify.port import DIAMETER_SCHEME
from nf.store.mongo import Doc

log = logging.getLogger("nf.diameter")

# Re-Auth-Request-Type AUTHORIZE_ONLY (RFC 6733 §8.12), as TS 29.212 asks.
AUTHORIZE_ONLY = 0


class Links(Protocol):
    """The live connections of this process (``nf.diameter.peer.Peers``)."""

    def open_peers(self) -> list[PeerInfo]: ...

    async def request(self, origin_host: str, req: Message, timeout_s: float) -> Message: ...


@dataclass(frozen=True)
class Target:
    """Where an outbox entry goes:
    ``diameter://<host>/<session>/<client host>/<client realm>/<what>``."""

    host: str
    session_id: str
    what: str  # "update" | "terminate" (Gx), "notify" (Sy), "charging" (Gy)
    # The client's Origin-Host and Origin-Realm (None: a URI of an earlier version, which
    # named the peer only; the session map has them).
    client: tuple[str, str] | None = None

    @property
    def app(self) -> str:
        return {"notify": sy.APP, gy.PUSH: gy.APP}.get(self.what, gx.APP)


def target(uri: str) -> Target:
    if not uri.startswith(DIAMETER_SCHEME):
        raise ValueError(f"not a Diameter URI: {uri[:100]}")
    parts = uri[len(DIAMETER_SCHEME):].split("/")
    if len(parts) not in (3, 5) or not all(parts) or \
            parts[-1] not in ("update", "terminate", "notify", gy.PUSH):
        raise ValueError(f"not a Diameter push URI: {uri[:100]}")
    client = (unquote(parts[2]), unquote(parts[3])) if len(parts) == 5 else None
    return Target(unquote(parts[0]), unquote(parts[1]), parts[-1], client)


def push_request(t: Target, body: Mapping[str, Any], *, origin_host: str,
                 origin_realm: str, dest_host: str, dest_realm: str,
                 extra: Sequence[Avp] = ()) -> Message:
    """The request for an outbox entry's SBI body: an ``SmPolicyNotification`` → RAR with
    the decision's QoS; a termination → RAR with Session-Release-Cause; a
    ``SpendingLimitStatus`` → SNR with Policy-Counter-Status-Reports. ``extra``: more AVPs
    for a RAR with a decision (usage monitoring). ``KeyError`` / ``ValueError`` for a body
    no request can be made of."""
    if t.what == gy.PUSH:  # a CHF notification of a Gy session: RAR or ASR
        return gy_wire.push_request(t.session_id, body, origin_host=origin_host,
                                    origin_realm=origin_realm, dest_host=dest_host,
                                    dest_realm=dest_realm)
    app = APP_SY if t.what == "notify" else APP_GX
    avps: list[Avp] = [
        codec.new_avp(codec.AVP_SESSION_ID, t.session_id),
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, app),
        codec.new_avp(codec.AVP_ORIGIN_HOST, origin_host.encode()),
        codec.new_avp(codec.AVP_ORIGIN_REALM, origin_realm.encode()),
        codec.new_avp(codec.AVP_DESTINATION_REALM, dest_realm.encode()),
        codec.new_avp(gx.AVP_DESTINATION_HOST, dest_host.encode()),
    ]
    if t.what == "notify":
        avps += sy.status_reports(body["statusInfos"])
        return codec.request(sy.CMD_SN, APP_SY, avps, hop_by_hop=0, end_to_end=0)
    avps.append(codec.new_avp(gx.AVP_RE_AUTH_REQUEST_TYPE, AUTHORIZE_ONLY))
    if t.what == "terminate":
        avps.append(codec.new_avp(gx.AVP_SESSION_RELEASE_CAUSE,
                                  gx.release_cause(body.get("cause")), VENDOR_3GPP))
    else:
        avps += gx.decision_avps(body["smPolicyDecision"])
        avps += list(extra)
    return codec.request(codec.CMD_RAR, APP_GX, avps, hop_by_hop=0, end_to_end=0)


def outcome_of(answer: Message) -> tuple[Outcome, str | None]:
    """What the peer's RAA/SNA means for the outbox entry."""
    rc = codec.result_code(answer)
    if rc is not None and 2000 <= rc < 3000:
        return Outcome.SENT, None
    error = f"Result-Code {rc}"
    if rc == codec.UNKNOWN_SESSION_ID:
        return Outcome.GONE, error
    if rc is not None and 3000 <= rc < 5000:
        return Outcome.RETRY, error  # protocol errors (busy, no route) and transient ones
    return Outcome.DEAD, error


class Pusher:
    """The worker: claims, sends and settles the Diameter pushes of the connected peers."""

    def __init__(self, outbox: MongoOutbox, links: Links, sessions: SessionMap,
                 stopping: asyncio.Event, clock: Clock, *, origin_host: str,
                 origin_realm: str, timeout_s: float, concurrency: int,
                 poll_interval_s: float, stranded_after_s: float,
                 monitor: UsageMonitor | None = None) -> None:
        self._outbox = outbox
        self._monitor = monitor
        self._clock = clock
        self._stranded_after_s = stranded_after_s
        self._last_sweep = float("-inf")
        self._links = links
        self._sessions = sessions
        self._stopping = stopping
        self._host = origin_host
        self._realm = origin_realm
        self._timeout_s = timeout_s
        self._concurrency = concurrency
        self._poll_s = poll_interval_s
        self._inflight = 0
        self._done = asyncio.Event()

    async def run(self) -> None:
        """Push until ``stopping`` is set, then finish the requests in flight."""
        wake = self._outbox.diameter_wake
        async with asyncio.TaskGroup() as tg:
            while not self._stopping.is_set():
                # Cleared before the claim: an enqueue during it brings another claim.
                wake.clear()
                claimed = 0
                peers = {p.origin_host: p for p in self._links.open_peers()}
                capacity = self._concurrency - self._inflight
                try:
                    docs = await self._outbox.claim_diameter(list(peers), capacity)
                except NfError as e:
                    logs.log(log, logging.WARNING, "diameter push: claiming failed",
                             cause=e.cause, detail=e.detail)
                    docs = []
                for doc in docs:
                    claimed += 1
                    self._inflight += 1
                    tg.create_task(self._push(doc, peers))
                await self._sweep(list(peers))
                if claimed and self._inflight < self._concurrency:
                    continue
                await self._idle()

    async def _sweep(self, connected: list[str]) -> None:
        """Now and then: fail one try of the pushes whose peer is connected nowhere."""
        mono = self._clock.monotonic()
        if mono - self._last_sweep < self._stranded_after_s / 2:
            return
        self._last_sweep = mono
        try:
            docs = await self._outbox.claim_diameter_stranded(
                connected, self._stranded_after_s, self._concurrency)
            for doc in docs:
                await self._outbox.settle(doc, Outcome.RETRY,
                                          f"no connection to {doc.get('diameter_peer')}")
        except NfError as e:
            logs.log(log, logging.WARNING, "diameter push: sweeping failed", cause=e.cause,
                     detail=e.detail)

    async def _idle(self) -> None:
        """Until a push is enqueued (here, or in another process of this ``nf serve``:
        ``nf.notify.wake``), a push in flight ends while all are busy, or the poll
        interval passes (pushes of other instances, retries past their backoff)."""
        woken_by = [self._outbox.diameter_wake, self._stopping]
        if self._inflight >= self._concurrency:
            woken_by.append(self._done)
        try:
            await until_woken(*woken_by, clock=self._clock, timeout_s=self._poll_s)
        finally:
            self._done.clear()

    async def _push(self, doc: Doc, peers: Mapping[str, PeerInfo]) -> None:
        try:
            await self._send(doc, peers)
        except Exception:
            log.exception("diameter push: settling failed; the lease will expire",
                          extra={"fields": {"kind": doc.get("kind"),
                                            "resource": doc.get("resource")}})
        finally:
            self._inflight -= 1
            self._done.set()

    async def _send(self, doc: Doc, peers: Mapping[str, PeerInfo]) -> None:
        try:
            t = target(str(doc["uri"]))
        except (KeyError, ValueError) as e:
            await self._outbox.poisoned(doc, f"not sendable: {type(e).__name__}: {e}")
            return
        peer = peers.get(t.host)
        if peer is None:  # gone since the claim: when it (or another process) has it again
            await self._outbox.settle(doc, Outcome.RETRY, "no connection to the peer")
            return
        extra: list[Avp] = []
        if t.what == "update" and self._monitor is not None and doc.get("supi"):
            extra = await self._monitor.avps(str(doc["supi"]))
        # Addressed to the client itself, which may sit behind the peer (a DRA).
        dest = t.client or await self._legacy_dest(t, peer)
        try:
            req = push_request(t, doc["body"], origin_host=self._host,
                               origin_realm=self._realm, dest_host=dest[0],
                               dest_realm=dest[1], extra=extra)
        except (KeyError, TypeError, ValueError) as e:
            await self._outbox.poisoned(doc, f"not sendable: {type(e).__name__}: {e}")
            return
        try:
            answer = await self._links.request(t.host, req, self._timeout_s)
        except NfError as e:
            await self._outbox.settle(doc, Outcome.RETRY, e.detail[:300])
            return
        outcome, error = outcome_of(answer)
        if outcome is Outcome.GONE and (t.client is None or t.app == sy.APP):
            # The session map's entry (Sy's, or an earlier version's) goes with it.
            await self._sessions.remove(t.app, peer.network_id, t.session_id)
        await self._outbox.settle(doc, outcome, error)

    async def _legacy_dest(self, t: Target, peer: PeerInfo) -> tuple[str, str]:
        """The client of a session an earlier version opened: from the session map."""
        s = await self._sessions.get(t.app, peer.network_id, t.session_id)
        return (s.origin_host, s.origin_realm or peer.origin_realm) if s is not None \
            else (t.host, peer.origin_realm)
