"""Sy (TS 29.219, application 16777302): a host network's PCRF asking this NF, as its OCS,
for policy counters, translated to the spending-limit service.

Its one job is translation. SLR initial / intermediate become
``SlcService.subscribe / modify`` with the SBI's own ``SpendingLimitContext``, STR becomes
``unsubscribe``; the answers carry the same counter statuses as the SBI's
``SpendingLimitStatus``. The subscription's notification URI
(``sessions.notification_uri``: the peer, the Session-Id, the PCRF's own Origin-Host and
Realm) makes a status change leave through the outbox as an SNR (``nf.diameter.push``).
The session map gives the subscription of an SLR intermediate or STR (Sy is off the
charging path). It never computes a counter itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from nf.diameter import codec
from nf.diameter.base import APP_SY, PeerInfo, client_state_id
from nf.diameter.codec import VENDOR_3GPP, Avp, Message
from nf.diameter.gx import client_of, result_of, subscriber_ids
from nf.diameter.sessions import Local, Restarts, Session, notification_uri
from nf.errors import NfError
from nf.notify.port import FROM_DIAMETER
from nf.slc.service import SlcService
from nf.slc.wire import SpendingLimitContext

APP = "sy"
CMD_SL = 8388635  # Spending-Limit-Request / Answer
CMD_SN = 8388636  # Spending-Status-Notification-Request / Answer
AVP_POLICY_COUNTER_IDENTIFIER = 2901
AVP_POLICY_COUNTER_STATUS = 2902
AVP_POLICY_COUNTER_STATUS_REPORT = 2903
AVP_SL_REQUEST_TYPE = 2904
SL_INITIAL, SL_INTERMEDIATE = 0, 1


def status_reports(status_infos: Mapping[str, Any]) -> list[Avp]:
    """The ``statusInfos`` of a ``SpendingLimitStatus`` as Policy-Counter-Status-Reports."""
    out: list[Avp] = []
    for counter_id, info in status_infos.items():
        out.append(codec.new_avp(AVP_POLICY_COUNTER_STATUS_REPORT, [
            codec.new_avp(AVP_POLICY_COUNTER_IDENTIFIER, str(counter_id), VENDOR_3GPP),
            codec.new_avp(AVP_POLICY_COUNTER_STATUS, str(info["currentStatus"]),
                          VENDOR_3GPP)], VENDOR_3GPP))
    return out


def _text(a: Avp) -> str:
    try:
        return bytes(a.payload).decode()
    except UnicodeDecodeError:
        raise codec.DecodeError(codec.INVALID_AVP_VALUE, f"AVP {a.code} is not UTF-8",
                                a) from None


def spending_limit_context(msg: Message, uri: str | None) -> SpendingLimitContext:
    """The SBI's subscription body for an SLR (no counter listed: all of them)."""
    supi, gpsi = subscriber_ids(msg)
    ids = [_text(a) for a in codec.find_all(msg, AVP_POLICY_COUNTER_IDENTIFIER, VENDOR_3GPP)]
    body: dict[str, Any] = {}
    if supi is not None:
        body["supi"] = supi
    if gpsi is not None:
        body["gpsi"] = gpsi
    if ids:
        body["policyCounterIds"] = ids
    if uri is not None:
        body["notifUri"] = uri
    try:
        return SpendingLimitContext.model_validate(body, context=FROM_DIAMETER)
    except ValidationError as e:
        raise codec.DecodeError(codec.INVALID_AVP_VALUE,
                                f"not a valid request: {e.errors()[0]['msg']}") from None


class SyApp:
    """``nf.diameter.peer.AppHandler`` for Sy: SLR → SLA, STR → STA."""

    app_id = APP_SY

    def __init__(self, slc: SlcService, local: Local) -> None:
        self._slc = slc
        self._local = local
        self._restarts = Restarts(local.sessions, APP)
        self._sessions = local.sessions

    def _answer(self, req: Message, rc: int | None, avps: list[Avp], *,
                failed: list[Avp] | None = None,
                experimental: tuple[int, int] | None = None, msg: str | None = None
                ) -> Message:
        if codec.header_of(req).command == CMD_SL:
            avps = [codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_SY), *avps]
        me = self._local
        return codec.answer(req, rc, me.origin_host, me.origin_realm, avps=avps,
                            failed=failed or [], experimental=experimental,
                            error_message=msg)

    async def handle(self, req: Message, peer: PeerInfo) -> Message:
        command = codec.header_of(req).command
        if command not in (CMD_SL, codec.CMD_STR):
            return self._answer(req, codec.COMMAND_UNSUPPORTED, [])
        try:
            await self._release_restarted(peer.network_id, client_of(req, peer)[0],
                                          codec.get_int(req, codec.AVP_ORIGIN_STATE_ID))
            session_id = codec.get_str(req, codec.AVP_SESSION_ID) or ""
            if command == codec.CMD_STR:
                await self._terminate(session_id, peer.network_id)
                return self._answer(req, codec.SUCCESS, [])
            status = await self._limit(req, session_id, peer)
        except codec.DecodeError as e:
            return self._answer(req, e.result_code, [], failed=[e.failed] if e.failed else [],
                                msg=str(e))
        except NfError as e:
            rc, exp = result_of(e)
            return self._answer(req, rc, [], experimental=exp, msg=e.detail[:200])
        return self._answer(req, codec.SUCCESS, status_reports(status["statusInfos"]))

    async def peer_opened(self, peer: PeerInfo) -> None:
        await self._release_restarted(peer.network_id, peer.origin_host, peer.state_id)

    async def _release_restarted(self, network: str, host: str, state: int | None) -> None:
        """A PCRF whose Origin-State-Id (in its CER or a request) went up restarted: its
        earlier subscriptions end."""
        await self._restarts.release(network, host, state, end=self._unsubscribe)

    async def _unsubscribe(self, ref: str) -> None:
        try:
            await self._slc.unsubscribe(ref)
        except NfError as e:
            if e.status != 404:  # already gone (an SNA said so)
                raise

    async def _limit(self, req: Message, session_id: str, peer: PeerInfo) -> dict[str, Any]:
        kind = codec.get_int(req, AVP_SL_REQUEST_TYPE, VENDOR_3GPP)
        if kind not in (SL_INITIAL, SL_INTERMEDIATE):
            a = codec.find(req, AVP_SL_REQUEST_TYPE, VENDOR_3GPP)
            raise codec.DecodeError(
                codec.MISSING_AVP if a is None else codec.INVALID_AVP_VALUE,
                "SL-Request-Type", a or codec.raw_avp(AVP_SL_REQUEST_TYPE, b"", VENDOR_3GPP))
        known = await self._sessions.get(APP, peer.network_id, session_id)
        if known is not None:  # intermediate, or an initial one sent again
            status = await self._slc.modify(known.ref, spending_limit_context(req, None))
            return status
        if kind == SL_INTERMEDIATE:
            raise codec.DecodeError(codec.UNKNOWN_SESSION_ID, "unknown Sy session")
        ctx = spending_limit_context(req, notification_uri(peer.origin_host, session_id,
                                                           *client_of(req, peer)))
        if ctx.supi is None:
            raise codec.DecodeError(codec.MISSING_AVP, "no Subscription-Id of type IMSI",
                                    codec.raw_avp(443, b""))
        location, status = await self._slc.subscribe(ctx, self._local.api_root, peer.network_id)
        await self._sessions.put(Session(
            APP, peer.network_id, session_id, location.rsplit("/", 1)[1], ctx.supi,
            peer.origin_host, *client_of(req, peer), client_state_id(req, peer)),
            self._local.clock.now())
        return status

    async def _terminate(self, session_id: str, network: str) -> None:
        known = await self._sessions.get(APP, network, session_id)
        if known is None:
            raise codec.DecodeError(codec.UNKNOWN_SESSION_ID, "unknown Sy session")
        await self._unsubscribe(known.ref)  # already gone: the STR still succeeds
        await self._sessions.remove(APP, network, session_id)
