"""Gy (RFC 4006 credit control, TS 32.299 for PS): CCR → the CHF's ``ChargingService``.

Its one job is the Gy application: a CCR, read and translated by ``nf.diameter.gy_wire``
into the SBI's ``ChargingDataRequest`` (the same wire model an SMF sends over Nchf), goes
to ``create`` / ``update`` / ``release``; the CHF's answer becomes the CCA. So a Gy
session draws on the same balance, gets the same grants, thresholds and final-unit
handling, and writes the same EDRs (``interface: "gy"``) as an SBI one, and a
retransmission is answered by the CHF's own idempotence (by invocation sequence number =
CC-Request-Number) even after a restart that emptied the base protocol's answer cache.
A Gy session costs no database operation beyond the Nchf one: its reference is derived
from the Session-Id (``charging_ref``), its notification URI says where its RAR / ASR go,
and the client's Origin-State-Id rides the CHF's session document (a client that
restarted has its sessions of before released).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from nf.chf.service import ChargingService
from nf.chf.wire import ChargingDataRequest
from nf.clock import Clock
from nf.config import Settings
from nf.diameter import codec
from nf.diameter.base import APP_GY, PeerInfo, client_state_id
from nf.diameter.codec import Avp, DecodeError, Message
from nf.diameter.gy_wire import (
    AVP_CC_REQUEST_NUMBER,
    AVP_CC_REQUEST_TYPE,
    EVENT,
    INITIAL,
    TERMINATION,
    UPDATE,
    Ccr,
    cca_avps,
    charging_ref,
    gpsi_of,
    parse_ccr,
    plmn_of_uli,
    to_sbi,
)
from nf.diameter.sessions import Restarts, SessionMap, notification_uri
from nf.errors import NfError
from nf.notify.port import Client

APP = "gy"  # in the session map
# The last part of a Gy session's notification URI: what the pusher sends as RAR / ASR.
PUSH = "charging"


def notify_uri(peer_host: str, session_id: str, client_host: str, client_realm: str
               ) -> str:
    """Where the CHF sends a Gy session's re-authorisations and aborts: the outbox hands
    them to the process holding ``peer_host``'s connection (``nf.diameter.push``), which
    addresses them to the client (behind a DRA: not the peer)."""
    return f"{notification_uri(peer_host, session_id, client_host, client_realm)}/{PUSH}"

# The translations, for the callers that knew them here.
__all__ = ["Ccr", "GyHandler", "Subscribers", "cca_avps", "charging_ref", "gpsi_of",
           "parse_ccr", "plmn_of_uli", "to_sbi"]

def _error_result(e: NfError) -> int:
    if e.status == 404:
        return codec.UNKNOWN_SESSION_ID
    if e.status == 400:
        return codec.INVALID_AVP_VALUE
    if e.status == 403:
        return 4010
    if e.status == 503:
        return codec.TOO_BUSY
    return codec.UNABLE_TO_COMPLY


class Subscribers(Protocol):
    """Who has an MSISDN (``nf.ledger.port.Ledger``)."""

    async def supi_of_gpsi(self, gpsi: str) -> str | None: ...


class GyHandler:
    """The Gy application: one CCR in, its CCA out."""

    app_id = APP_GY

    def __init__(self, chf: ChargingService, settings: Settings, clock: Clock,
                 subscribers: Subscribers | None = None,
                 sessions: SessionMap | None = None) -> None:
        self._chf = chf
        self._subscribers = subscribers
        # The Gy sessions an earlier version kept by client and Origin-State-Id: those of
        # a client that restarted are released too (their reservations return).
        self._sessions = sessions
        self._restarts = Restarts(sessions, APP)
        self._settings = settings
        self._clock = clock
        d = settings.diameter
        self._origin = (d.origin_host, d.origin_realm)

    def _answer(self, req: Message, rc: int, avps: Sequence[Avp] = (),
                failed: Sequence[Avp] = (), msg: str | None = None) -> Message:
        return codec.answer(req, rc, *self._origin, avps=avps, failed=failed,
                            error_message=msg)

    def _consumer_plmn(self, peer: PeerInfo) -> str | None:
        n = self._settings.network(peer.network_id)
        return n.plmn_ids[0] if n is not None else None

    async def handle(self, req: Message, peer: PeerInfo) -> Message:
        if codec.header_of(req).command != codec.CMD_CCR:
            return self._answer(req, codec.COMMAND_UNSUPPORTED)
        try:
            ccr = parse_ccr(req)
        except DecodeError as e:
            return self._answer(req, e.result_code, failed=[e.failed] if e.failed else [],
                                msg=str(e))
        base = [codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
                codec.new_avp(AVP_CC_REQUEST_TYPE, ccr.request_type),
                codec.new_avp(AVP_CC_REQUEST_NUMBER, ccr.request_number)]
        supi = None
        if ccr.request_type in (INITIAL, EVENT) and not ccr.imsi:
            supi = await self._supi_of_msisdn(ccr.msisdn)
            if supi is None:
                return self._answer(req, codec.USER_UNKNOWN, base,
                                    msg="no subscriber with this END_USER_IMSI or "
                                        "END_USER_E164")
        # The client's own (behind a DRA, not the peer's): where its RAR is addressed.
        client = (ccr.origin_host or peer.origin_host,
                  codec.get_str(req, codec.AVP_ORIGIN_REALM) or peer.origin_realm)
        try:
            sbi = to_sbi(ccr, self._consumer_plmn(peer), self._clock.now(), supi,
                         notify_uri=notify_uri(peer.origin_host, ccr.session_id, *client)
                         if ccr.request_type == INITIAL else None)
        except ValidationError as e:
            return self._answer(req, codec.INVALID_AVP_VALUE, base,
                                msg=e.errors()[0].get("msg", "invalid value"))
        ref = charging_ref(peer.network_id, ccr.session_id)
        try:
            await self._release_restarted(peer.network_id, client[0],
                                          codec.get_int(req, codec.AVP_ORIGIN_STATE_ID))
            state = client_state_id(req, peer)
            body = await self._call(ccr, ref, sbi, None if state is None else Client(
                peer.network_id, client[0], state))
        except NfError as e:
            rc = _error_result(e)
            failed = [codec.find(req, AVP_CC_REQUEST_NUMBER)] if e.status == 400 else []
            return self._answer(req, rc, base if rc < 3000 or rc >= 4000 else (),
                                failed=[f for f in failed if f is not None], msg=e.detail)
        rc, avps = cca_avps(ccr, body)
        return self._answer(req, rc, avps)

    async def peer_opened(self, peer: PeerInfo) -> None:
        """A PGW whose CER's Origin-State-Id went up restarted: its Gy sessions of before
        are gone there, so they are released here (RFC 6733 §8.16)."""
        await self._release_restarted(peer.network_id, peer.origin_host, peer.state_id)

    async def _release_restarted(self, network: str, host: str, state_id: int | None
                                 ) -> None:
        await self._restarts.release(network, host, state_id, end=self._abandon,
                                     opened_by=self._chf.opened_by)

    async def _abandon(self, ref: str) -> None:
        await self._chf.abandon(ref, "peer_restarted")

    async def _supi_of_msisdn(self, msisdn: str | None) -> str | None:
        """A CCR with only an END_USER_E164 Subscription-Id: the subscriber with that
        MSISDN as GPSI (``msisdn-<digits>``), if any."""
        gpsi = gpsi_of(msisdn) if msisdn else None
        if gpsi is None or self._subscribers is None:
            return None
        return await self._subscribers.supi_of_gpsi(gpsi)

    async def _call(self, ccr: Ccr, ref: str, sbi: ChargingDataRequest,
                    client: Client | None) -> dict[str, Any] | None:
        if ccr.request_type == INITIAL:
            _status, body, _ref = await self._chf.create(sbi, ref=ref, interface="gy",
                                                         client=client)
            return body
        if ccr.request_type == UPDATE:
            return (await self._chf.update(ref, sbi))[1]
        if ccr.request_type == TERMINATION:
            await self._chf.release(ref, sbi)
            return None
        # EVENT: a one-shot debit (Requested-Action DIRECT_DEBITING): open charging what
        # the MSCCs report used, then close: two CHF steps with numbers 2n and 2n+1.
        first = sbi.model_copy(update={"invocationSequenceNumber": 2 * ccr.request_number})
        _status, body, _ref = await self._chf.create(first, ref=ref, interface="gy",
                                                     client=client)
        if body.get("invocationResult") is None:
            last = sbi.model_copy(update={  # the usage went with the first step
                "invocationSequenceNumber": 2 * ccr.request_number + 1,
                "multipleUnitUsage": None})
            await self._chf.release(ref, last)
        return body
