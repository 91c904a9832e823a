"""The Diameter base protocol of one connection (RFC 6733, RFC 3539), sans-IO.

Its one job is to decide, for each message received and each tick of the clock, what the
connection does: answer it (CEA, DWA, DPA, a protocol error, a stored answer for a
retransmission), hand a request to the application of its Application-Id, deliver an
answer to a request of ours, send a watchdog or close. No sockets, no ``await``, no
logging: the asyncio shell (``nf.diameter.peer``) does those and passes the time in.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nf.diameter import codec
from nf.diameter.codec import Avp, Message

APP_GY = 4
APP_GX = 16777238
APP_SY = 16777302
# The 3GPP applications are advertised inside Vendor-Specific-Application-Id.
VENDOR_APPS = frozenset({APP_GX, APP_SY})

DISCONNECT_REBOOTING = 0
DISCONNECT_BUSY = 1
DISCONNECT_DO_NOT_WANT_TO_TALK_TO_YOU = 2


@dataclass(frozen=True)
class Identity:
    """This NF as a Diameter node."""

    origin_host: str
    origin_realm: str
    host_ip: str
    product_name: str
    apps: tuple[int, ...] = (APP_GY, APP_GX, APP_SY)
    vendor_id: int = codec.VENDOR_3GPP
    origin_state_id: int = 1


@dataclass(frozen=True)
class Allowed:
    """Who may connect: Origin-Host -> (host network id, that network's realms)."""

    peers: Mapping[str, tuple[str, frozenset[str]]]


@dataclass(frozen=True)
class PeerInfo:
    """A peer that passed the capabilities exchange."""

    origin_host: str
    origin_realm: str
    network_id: str
    apps: frozenset[int]
    # The Origin-State-Id of its CER (None: it sent none).
    state_id: int | None = None


def client_state_id(req: Message, peer: PeerInfo) -> int | None:
    """The Origin-State-Id of a request's client: the request's own, else, for a client
    connected directly (its requests need not repeat it), its CER's."""
    own = codec.get_int(req, codec.AVP_ORIGIN_STATE_ID)
    if own is not None:
        return own
    host = codec.get_str(req, codec.AVP_ORIGIN_HOST)
    return peer.state_id if host in (None, peer.origin_host) else None


class StateIds:
    """The Origin-State-Id last acted on per client (host network, Origin-Host), to tell
    a restart (RFC 6733 §8.16: the value goes up when the client restarts and loses its
    sessions). Sans-IO and bounded: the oldest client is forgotten past ``size`` (it then
    costs one more look for sessions left behind, never a wrong release: the sessions to
    release are those the client opened under a lower value)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._done: OrderedDict[tuple[str, str], int] = OrderedDict()

    def restarted(self, network: str, host: str, state_id: int | None) -> bool:
        """Whether ``state_id`` may show a restart not yet acted on: the sessions the
        client opened under a lower value are to be released, then ``acted`` called."""
        if state_id is None:
            return False
        done = self._done.get((network, host))
        return done is None or state_id > done

    def acted(self, network: str, host: str, state_id: int | None) -> None:
        """The sessions left behind by ``state_id``'s restart are released."""
        if state_id is None:
            return
        key = (network, host)
        if self._done.get(key, -1) >= state_id:
            return
        self._done[key] = state_id
        self._done.move_to_end(key)
        while len(self._done) > self._size:
            self._done.popitem(last=False)


class AnswerCache:
    """The answers sent lately, by (Origin-Host, End-to-End-Id), for retransmissions
    (RFC 6733 §6.3: a duplicate is answered with the same answer, never applied twice).
    Kept encoded (a few hundred bytes each, not a tree of objects): the bytes that were
    sent, not encoded a second time. Bounded: the oldest is dropped past ``size``."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._answers: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, key: tuple[str, int]) -> bytes | None:
        return self._answers.get(key)

    def put(self, key: tuple[str, int], answer: bytes) -> None:
        if self._size <= 0:
            return
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)


class State(enum.Enum):
    WAIT_CER = "wait-cer"
    OPEN = "open"
    CLOSING = "closing"  # DPR sent or received: only the DPA / the close are left
    CLOSED = "closed"


@dataclass
class Step:
    """What the shell does after one event."""

    send: list[Message] = field(default_factory=list)
    dispatch: Message | None = None  # a request for the application of its App-Id
    # The request's retransmission key (``dedupe_key``), read once: its answer is kept
    # under it.
    key: tuple[str, int] | None = None
    answer: Message | None = None  # an answer to one of our own requests
    close: bool = False
    why: str | None = None  # a reason worth logging (refused peer, failed watchdog)


def dedupe_key(msg: Message) -> tuple[str, int] | None:
    host = codec.get_str(msg, codec.AVP_ORIGIN_HOST)
    return None if host is None else (host, codec.header_of(msg).end_to_end)


class Connection:
    """One connection's base-protocol state."""

    def __init__(self, me: Identity, allowed: Allowed, cache: AnswerCache, *,
                 watchdog_s: float, now: float, first_id: int) -> None:
        self.me = me
        self.allowed = allowed
        self.cache = cache
        self.watchdog_s = watchdog_s
        self.state = State.WAIT_CER
        self.peer: PeerInfo | None = None
        self._last_rx = now
        self._dwr_sent_at: float | None = None
        self._next_id = first_id & 0xFFFFFFFF

    # -- ids ------------------------------------------------------------------------------

    def next_ids(self) -> tuple[int, int]:
        """Hop-by-Hop and End-to-End ids for a request of ours (RFC 6733 §3: the E2E ids
        start from a clock-and-random seed and increase)."""
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return self._next_id, self._next_id

    def make_request(self, command: int, app_id: int, avps: Sequence[Avp],
                     proxiable: bool = False) -> Message:
        hbh, e2e = self.next_ids()
        return codec.request(command, app_id, avps, hop_by_hop=hbh, end_to_end=e2e,
                             proxiable=proxiable)

    def _origin(self) -> list[Avp]:
        return [codec.new_avp(codec.AVP_ORIGIN_HOST, self.me.origin_host.encode()),
                codec.new_avp(codec.AVP_ORIGIN_REALM, self.me.origin_realm.encode())]

    def _answer(self, req: Message, rc: int, avps: Sequence[Avp] = (),
                failed: Sequence[Avp] = (), msg: str | None = None) -> Message:
        return codec.answer(req, rc, self.me.origin_host, self.me.origin_realm, avps=avps,
                            failed=failed, error_message=msg)

    # -- events ---------------------------------------------------------------------------

    def received(self, msg: Message, now: float) -> Step:
        """A message read whole from the connection. An AVP the base protocol reads that
        holds no valid value (an Origin-Host that is no UTF-8, ...) is answered 5004 with it
        in Failed-AVP (a CER so answered also closes: nothing was agreed); an answer that
        holds one is dropped."""
        self._last_rx = now
        try:
            return self._received(msg)
        except codec.DecodeError as e:
            h = codec.header_of(msg)
            if not h.is_request:
                return Step()
            ans = self._answer(msg, e.result_code,
                               failed=[e.failed] if e.failed is not None else [], msg=str(e))
            if self.state is State.WAIT_CER:
                self.state = State.CLOSED
                return Step(send=[ans], close=True, why=f"bad CER: {e}")
            return Step(send=[ans])

    def _received(self, msg: Message) -> Step:
        h = codec.header_of(msg)
        if h.flags & codec.FLAGS_RESERVED or (h.is_request and h.flags & codec.FLAG_ERROR):
            if h.is_request:
                return Step(send=[self._answer(msg, codec.INVALID_HDR_BITS,
                                               msg="reserved or E bit set in a request")])
            return Step()
        if not h.is_request:
            return self._on_answer(msg, h)
        if self.state is State.WAIT_CER:
            if h.command != codec.CMD_CER:
                return Step(close=True, why=f"command {h.command} before CER")
            return self._on_cer(msg)
        if self.state is State.CLOSED:
            return Step()
        if h.command == codec.CMD_DWR:
            return Step(send=[self._answer(msg, codec.SUCCESS, [self._state_id()])])
        if h.command == codec.CMD_DPR:
            self.state = State.CLOSING
            return Step(send=[self._answer(msg, codec.SUCCESS)],
                        why=f"DPR cause {codec.get_int(msg, codec.AVP_DISCONNECT_CAUSE)}")
        if h.command == codec.CMD_CER:
            return Step(send=[self._answer(msg, codec.UNABLE_TO_COMPLY,
                                           msg="capabilities already exchanged")])
        return self._on_request(msg, h)

    def _on_request(self, msg: Message, h: codec.Header) -> Step:
        assert self.peer is not None
        if h.app_id == codec.APP_BASE:
            return Step(send=[self._answer(msg, codec.COMMAND_UNSUPPORTED)])
        if h.app_id not in self.peer.apps or h.app_id not in self.me.apps:
            return Step(send=[self._answer(msg, codec.APPLICATION_UNSUPPORTED)])
        realm = codec.get_str(msg, codec.AVP_DESTINATION_REALM)
        if realm is not None and realm != self.me.origin_realm:
            return Step(send=[self._answer(msg, codec.REALM_NOT_SERVED)])
        me = self.me.origin_host.encode()
        if any(bytes(r.payload) == me for r in codec.find_all(msg, codec.AVP_ROUTE_RECORD)):
            return Step(send=[self._answer(msg, codec.LOOP_DETECTED)])  # it came round
        key = dedupe_key(msg)
        if key is not None:
            stored = self.cache.get(key)
            if stored is not None:  # a duplicate: the same answer again, nothing applied
                return Step(send=[codec.decode(
                    codec.with_hop_by_hop_bytes(stored, h.hop_by_hop))])
        bad = codec.unknown_mandatory_in(msg)
        if bad is not None:
            return self._stored(msg, self._answer(msg, codec.AVP_UNSUPPORTED, failed=[bad]))
        if codec.find(msg, codec.AVP_SESSION_ID) is None or \
                codec.find(msg, codec.AVP_ORIGIN_HOST) is None:
            which = codec.AVP_SESSION_ID if codec.find(msg, codec.AVP_SESSION_ID) is None \
                else codec.AVP_ORIGIN_HOST
            return self._stored(msg, self._answer(
                msg, codec.MISSING_AVP, failed=[codec.raw_avp(which, b"", mandatory=True)]))
        return Step(dispatch=msg, key=key)

    def _stored(self, req: Message, ans: Message) -> Step:
        self.answered(req, ans)
        return Step(send=[ans])

    def answered(self, req: Message, ans: Message | bytes,
                 key: tuple[str, int] | None = None) -> None:
        """The application answered ``req``: keep the answer (as sent, or to be encoded)
        for a retransmission, under ``key`` (the step's) or the request's own."""
        key = key or dedupe_key(req)
        if key is not None:
            self.cache.put(key, ans if isinstance(ans, bytes) else codec.encode(ans))

    def _on_answer(self, msg: Message, h: codec.Header) -> Step:
        if h.command == codec.CMD_DWR:
            self._dwr_sent_at = None
            return Step()
        if h.command == codec.CMD_DPR:
            self.state = State.CLOSED
            return Step(close=True)
        return Step(answer=msg)

    def _state_id(self) -> Avp:
        return codec.new_avp(codec.AVP_ORIGIN_STATE_ID, self.me.origin_state_id)

    def _on_cer(self, cer: Message) -> Step:
        host = codec.get_str(cer, codec.AVP_ORIGIN_HOST) or ""
        realm = codec.get_str(cer, codec.AVP_ORIGIN_REALM) or ""
        allowed = self.allowed.peers.get(host)
        if allowed is None or realm not in allowed[1]:
            self.state = State.CLOSED
            return Step(send=[self._cea(cer, codec.UNKNOWN_PEER)], close=True,
                        why=f"peer {host!r} (realm {realm!r}) is not allowed")
        theirs = peer_apps(cer)
        common = frozenset(self.me.apps) if codec.APP_RELAY in theirs else \
            frozenset(theirs) & frozenset(self.me.apps)
        if not common:
            self.state = State.CLOSED
            return Step(send=[self._cea(cer, codec.NO_COMMON_APPLICATION)], close=True,
                        why=f"peer {host!r} offers none of our applications")
        self.peer = PeerInfo(host, realm, allowed[0], common,
                             codec.get_int(cer, codec.AVP_ORIGIN_STATE_ID))
        self.state = State.OPEN
        return Step(send=[self._cea(cer, codec.SUCCESS)])

    def _cea(self, cer: Message, rc: int) -> Message:
        avps: list[Avp] = [
            codec.new_avp(codec.AVP_HOST_IP_ADDRESS, self.me.host_ip),
            codec.new_avp(codec.AVP_VENDOR_ID, self.me.vendor_id),
            codec.new_avp(codec.AVP_PRODUCT_NAME, self.me.product_name),
            self._state_id(),
            codec.new_avp(codec.AVP_SUPPORTED_VENDOR_ID, codec.VENDOR_3GPP)]
        for app in self.me.apps:
            if app in VENDOR_APPS:
                avps.append(codec.new_avp(codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID, [
                    codec.new_avp(codec.AVP_VENDOR_ID, codec.VENDOR_3GPP),
                    codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, app)]))
            else:
                avps.append(codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, app))
        return self._answer(cer, rc, avps)

    def tick(self, now: float) -> Step:
        """The watchdog (RFC 3539): a DWR after Tw without traffic; the connection is
        closed when that DWR is not answered within another Tw."""
        if self.state is State.WAIT_CER or self.state is State.CLOSED:
            return Step()
        if self._dwr_sent_at is not None:
            if now - self._dwr_sent_at >= self.watchdog_s:
                self.state = State.CLOSED
                return Step(close=True, why="watchdog: no DWA within Tw")
            return Step()
        if self.state is State.OPEN and now - self._last_rx >= self.watchdog_s:
            self._dwr_sent_at = now
            return Step(send=[self.make_request(codec.CMD_DWR, codec.APP_BASE,
                                                [*self._origin(), self._state_id()])])
        return Step()

    def disconnect(self, cause: int = DISCONNECT_REBOOTING) -> Step:
        """Our side ends the connection (shutdown): DPR, then close on its DPA."""
        if self.state is not State.OPEN:
            self.state = State.CLOSED
            return Step(close=True)
        self.state = State.CLOSING
        return Step(send=[self.make_request(codec.CMD_DPR, codec.APP_BASE, [
            *self._origin(), codec.new_avp(codec.AVP_DISCONNECT_CAUSE, cause)])])

    def next_tick_in(self, now: float) -> float:
        """Seconds until ``tick`` may have something to do."""
        since = self._dwr_sent_at if self._dwr_sent_at is not None else self._last_rx
        return max(0.05, since + self.watchdog_s - now)


def peer_apps(cer: Message) -> set[int]:
    """The applications a CER advertises, plain or inside Vendor-Specific-Application-Id."""
    apps: set[int] = set()
    for code in (codec.AVP_AUTH_APPLICATION_ID, codec.AVP_ACCT_APPLICATION_ID):
        apps |= {codec.int_value(a) for a in codec.find_all(cer, code)}
    for vsa in codec.find_all(cer, codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID):
        for code in (codec.AVP_AUTH_APPLICATION_ID, codec.AVP_ACCT_APPLICATION_ID):
            apps |= {codec.int_value(a) for a in codec.find_all(vsa, code)}
    return apps


def allowed_from(networks: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> Allowed:
    """``network id -> (realms, peers)`` as the lookup by peer."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for net_id, (realms, peers) in networks.items():
        for p in peers:
            out[p] = (net_id, frozenset(realms))
    return Allowed(out)
