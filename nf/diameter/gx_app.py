"""The Gx application: one CCR in, one CCA out, on the PCF (``nf.diameter.gx`` translates).

Its one job is to call the PCF at the cost of the same SBI operation, with no lookup of
its own: the association's id is derived from the host network and the Session-Id
(``sessions.gx_ref``), so CCR-U and CCR-T name it directly and a peer of another host
network reaches nothing; the notification URI (``sessions.notification_uri``) says where
the PCF's later decisions go as RAR, to the client behind a DRA too; the client's
Origin-State-Id is written with the association, so a client that restarted has its
sessions of before ended (RFC 6733 §8.16). Usage monitoring is armed from the balance
the PCF read for its decision. Sessions an earlier version opened are found in the
session map, read only on a miss.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from nf import logs
from nf.diameter import codec, umi
from nf.diameter.base import APP_GX, PeerInfo, client_state_id
from nf.diameter.codec import VENDOR_3GPP, Avp, Message
from nf.diameter.gx import (
    APP,
    AVP_CC_REQUEST_NUMBER,
    AVP_CC_REQUEST_TYPE,
    AVP_FEATURE_LIST,
    AVP_FEATURE_LIST_ID,
    AVP_SUPPORTED_FEATURES,
    FEATURES_LIST1,
    INITIAL,
    UPDATE,
    GxCcr,
    client_of,
    context_data,
    decision_avps,
    parse_ccr,
    result_of,
    update_data,
)
from nf.diameter.sessions import Local, Restarts, Session, gx_ref, notification_uri
from nf.diameter.umi import UsageMonitor
from nf.errors import NfError
from nf.notify.port import Client
from nf.pcf.reading import Decided
from nf.pcf.service import PcfService

log = logging.getLogger("nf.diameter")


class GxApp:
    """``nf.diameter.peer.AppHandler`` for Gx: one CCR in, one CCA out."""

    app_id = APP_GX

    def __init__(self, pcf: PcfService, local: Local, *,
                 monitor: UsageMonitor | None = None) -> None:
        self._pcf = pcf
        self._monitor = monitor
        self._local = local
        self._restarts = Restarts(local.sessions, APP)
        self._sessions = local.sessions

    def _cca(self, req: Message, ccr: GxCcr | None, rc: int | None,
             avps: Sequence[Avp] = (), *, failed: Sequence[Avp] = (),
             experimental: tuple[int, int] | None = None, msg: str | None = None
             ) -> Message:
        head = [codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GX)]
        if ccr is not None:
            head += [codec.new_avp(AVP_CC_REQUEST_TYPE, ccr.request_type),
                     codec.new_avp(AVP_CC_REQUEST_NUMBER, ccr.request_number)]
        me = self._local
        return codec.answer(req, rc, me.origin_host, me.origin_realm, avps=[*head, *avps],
                            failed=failed, experimental=experimental, error_message=msg)

    async def handle(self, req: Message, peer: PeerInfo) -> Message:
        try:
            ccr = parse_ccr(req)
        except codec.DecodeError as e:
            return self._cca(req, None, e.result_code, failed=[e.failed] if e.failed else [],
                             msg=str(e))
        try:
            await self._release_restarted(peer.network_id, client_of(req, peer)[0],
                                          codec.get_int(req, codec.AVP_ORIGIN_STATE_ID))
            if ccr.request_type == INITIAL:
                avps = await self._initial(ccr, req, peer)
            elif ccr.request_type == UPDATE:
                avps = await self._update(ccr, req, peer.network_id)
            else:
                await self._terminate(ccr, peer.network_id)
                avps = []
        except codec.DecodeError as e:
            return self._cca(req, ccr, e.result_code, failed=[e.failed] if e.failed else [],
                             msg=str(e))
        except NfError as e:
            rc, exp = result_of(e)
            return self._cca(req, ccr, rc, experimental=exp, msg=e.detail[:200])
        return self._cca(req, ccr, codec.SUCCESS, avps)

    async def peer_opened(self, peer: PeerInfo) -> None:
        await self._release_restarted(peer.network_id, peer.origin_host, peer.state_id)

    async def _release_restarted(self, network: str, host: str, state: int | None) -> None:
        """A PCEF whose Origin-State-Id (in its CER or a request) went up restarted: the
        sessions it opened before are gone there, so they end here too (RFC 6733 §8.16):
        those whose association holds its Origin-State-Id, and those an earlier version
        kept in the session map."""
        await self._restarts.release(network, host, state, end=self._end,
                                     opened_by=self._pcf.opened_by)

    async def _end(self, ref: str) -> None:
        try:
            await self._pcf.delete(ref)
        except NfError as e:
            if e.status != 404:
                raise

    async def _initial(self, ccr: GxCcr, req: Message, peer: PeerInfo) -> list[Avp]:
        host, realm = client_of(req, peer)
        ctx = context_data(ccr, notification_uri(peer.origin_host, ccr.session_id, host,
                                                 realm))
        state = client_state_id(req, peer)
        got = await self._pcf.create_decided(
            ctx, self._local.api_root, peer.network_id,
            sm_policy_id=gx_ref(peer.network_id, ccr.session_id),
            client=None if state is None else Client(peer.network_id, host, state))
        avps = self._avps(got)
        if ccr.features is not None:
            avps.append(codec.new_avp(AVP_SUPPORTED_FEATURES, [
                codec.new_avp(codec.AVP_VENDOR_ID, VENDOR_3GPP),
                codec.new_avp(AVP_FEATURE_LIST_ID, 1, VENDOR_3GPP),
                codec.new_avp(AVP_FEATURE_LIST, ccr.features & FEATURES_LIST1, VENDOR_3GPP),
            ], VENDOR_3GPP))
        return avps

    def _avps(self, got: Decided) -> list[Avp]:
        """The decision's AVPs, and the usage monitoring armed again from the balance the
        PCF read for it. TS 29.212 §4.5.17: the PCEF keeps a threshold until it is
        reached, but the Event-Triggers of an answer replace the ones it holds, so every
        answer that carries triggers also carries USAGE_REPORT and the current grant."""
        avps = decision_avps(got.decision)
        if self._monitor is not None:
            avps += self._monitor.avps_of(got.balance)
        return avps

    async def _legacy(self, network: str, session_id: str) -> Session | None:
        """A session an earlier version opened (its association has another id): the
        session map's entry, read only when the derived id names no association."""
        return await self._sessions.get(APP, network, session_id)

    async def _update(self, ccr: GxCcr, req: Message, network: str) -> list[Avp]:
        ref = gx_ref(network, ccr.session_id)
        used = umi.reported_octets(req)
        if used is not None:  # charged over Gy or Nchf, never here: decide again, re-arm
            logs.log(log, logging.INFO, "usage reported over Gx", smPolicyId=ref,
                     octets=used)
        try:
            got = await self._pcf.update_decided(ref, update_data(ccr))
        except NfError as e:
            if e.status != 404:
                raise
            old = await self._legacy(network, ccr.session_id)
            if old is None:
                raise codec.DecodeError(codec.UNKNOWN_SESSION_ID,
                                        "unknown Gx session") from None
            ref = old.ref
            got = await self._pcf.update_decided(ref, update_data(ccr))
        if "relCause" in got.decision:  # the subscriber may no longer have the session
            if ref != gx_ref(network, ccr.session_id):  # an earlier version's: unmapped
                await self._sessions.remove(APP, network, ccr.session_id)
            raise NfError("the session is no longer authorised", 403,
                          "POLICY_CONTEXT_DENIED")
        return self._avps(got)

    async def _terminate(self, ccr: GxCcr, network: str) -> None:
        try:
            await self._pcf.delete(gx_ref(network, ccr.session_id))
            return
        except NfError as e:
            if e.status != 404:
                raise
        old = await self._legacy(network, ccr.session_id)
        if old is None:  # never opened here, or ended already: nothing to end
            raise codec.DecodeError(codec.UNKNOWN_SESSION_ID, "unknown Gx session")
        await self._end(old.ref)
        await self._sessions.remove(APP, network, ccr.session_id)
