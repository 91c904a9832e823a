"""An asyncio Diameter peer for the policy tests (a PCEF for Gx, a PCRF for Sy) built
on the NF's codec library. It reads in the background: answers go to the request waiting
for them; the NF's requests (RAR, SNR) are recorded with their arrival time and answered
with ``push_result`` (2001 unless a test says otherwise; None: not answered); DWR is
answered as a peer does.
Also the NF set-up those tests share: big grants, the PGW and PCRF allowed, a subscriber on
the demo's throttled-at-the-cap plan, and charging over the SBI until a RAR arrives."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import httpx

from bench.diameter_load import next_request, stop_reading
from nf.config import Settings
from nf.diameter import codec, gx
from nf.diameter.base import APP_GX
from nf.diameter.codec import Avp, Message
from tests.diameter.client import PGW, REALM
from tests.smf_sim import SmfSim, Usage

V = codec.VENDOR_3GPP
GIB = 1024**3
PCRF = "pcrf.northwind.test"
DRA = "dra1.northwind.test"
BLUEPEAK_PGW, BLUEPEAK_REALM = "pgw1.bluepeak.test", "epc.bluepeak.test"


@dataclass(frozen=True)
class Pushed:
    at: float  # time.monotonic() of arrival
    msg: Message


class Peer:
    def __init__(self, port: int, origin_host: str, origin_realm: str) -> None:
        self.port = port
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self.push_result: int | None = codec.SUCCESS
        self.pushed: list[Pushed] = []
        self._arrived = asyncio.Event()
        self._ids = itertools.count((int(time.time()) & 0xFFFF) << 12)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._sessions = itertools.count(1)

    async def __aenter__(self) -> Self:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_a: object) -> None:
        await stop_reading(self._task, self._writer)

    async def _read(self) -> None:
        while True:
            hdr, msg = await next_request(self._reader, self._pending)
            rc = codec.SUCCESS if hdr.command == codec.CMD_DWR else self.push_result
            if hdr.command != codec.CMD_DWR:
                self.pushed.append(Pushed(time.monotonic(), msg))
                self._arrived.set()
            if rc is not None:  # None: the request goes unanswered
                self._writer.write(codec.encode(codec.answer(msg, rc, self.origin_host,
                                                             self.origin_realm)))

    def session_id(self) -> str:
        return f"{self.origin_host};{int(time.time())};{next(self._sessions)}"

    def origin(self) -> list[Avp]:
        return [codec.new_avp(codec.AVP_ORIGIN_HOST, self.origin_host.encode()),
                codec.new_avp(codec.AVP_ORIGIN_REALM, self.origin_realm.encode())]

    async def call(self, command: int, app_id: int, avps: Sequence[Avp]) -> Message:
        n = next(self._ids)
        req = codec.request(command, app_id, avps, hop_by_hop=n, end_to_end=n,
                            proxiable=app_id != 0)
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[n] = fut
        self._writer.write(codec.encode(req))
        return await asyncio.wait_for(fut, 10)

    async def cer(self, vendor_apps: Sequence[int], extra: Sequence[Avp] = ()) -> Message:
        avps = [*self.origin(),
                codec.new_avp(codec.AVP_HOST_IP_ADDRESS, "127.0.0.1"),
                codec.new_avp(codec.AVP_VENDOR_ID, 0),
                codec.new_avp(codec.AVP_PRODUCT_NAME, "test-peer"),
                codec.new_avp(codec.AVP_SUPPORTED_VENDOR_ID, V)]
        avps += [codec.new_avp(codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID, [
            codec.new_avp(codec.AVP_VENDOR_ID, V),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, a)]) for a in vendor_apps]
        return await self.call(codec.CMD_CER, 0, [*avps, *extra])

    async def wait_push(self, command: int, after: int = 0, timeout_s: float = 10
                        ) -> Pushed:
        """The first request of ``command`` the NF sent after the first ``after`` ones."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [p for p in self.pushed[after:] if codec.header_of(p.msg).command == command]
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no request {command} from the NF in {timeout_s} s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))


def subscription(imsi: str) -> Avp:
    return codec.new_avp(gx.AVP_SUBSCRIPTION_ID, [
        codec.new_avp(gx.AVP_SUBSCRIPTION_ID_TYPE, gx.SUB_IMSI),
        codec.new_avp(gx.AVP_SUBSCRIPTION_ID_DATA, imsi)])


def apn_ambr(msg: Message) -> tuple[int | None, int | None]:
    q = codec.find(msg, gx.AVP_QOS_INFORMATION, V)
    if q is None:
        return None, None
    return codec.get_int(q, gx.AVP_APN_AMBR_UL, V), codec.get_int(q, gx.AVP_APN_AMBR_DL, V)


class GxSession:
    """One IP-CAN session of a PCEF: CCR-I, CCR-U, CCR-T with increasing request numbers."""

    def __init__(self, peer: Peer, imsi: str, dest_realm: str, plmn: str = "00101",
                 client: str | None = None, state_id: int | None = None) -> None:
        """``client``: the PCEF's Origin-Host when ``peer`` is a DRA relaying for it;
        ``state_id``: the Origin-State-Id its requests carry."""
        self.peer = peer
        self.state_id = state_id
        self.origin = peer.origin() if client is None else [
            codec.new_avp(codec.AVP_ORIGIN_HOST, client.encode()),
            codec.new_avp(codec.AVP_ORIGIN_REALM, peer.origin_realm.encode())]
        self.imsi = imsi
        self.dest_realm = dest_realm
        self.plmn = plmn
        self.session_id = peer.session_id()
        self.number = 0

    def _head(self, rtype: int) -> list[Avp]:
        avps = [codec.new_avp(codec.AVP_SESSION_ID, self.session_id),
                codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GX),
                *self.origin,
                codec.new_avp(codec.AVP_DESTINATION_REALM, self.dest_realm.encode()),
                codec.new_avp(gx.AVP_CC_REQUEST_TYPE, rtype),
                codec.new_avp(gx.AVP_CC_REQUEST_NUMBER, self.number)]
        if self.state_id is not None:
            avps.append(codec.new_avp(codec.AVP_ORIGIN_STATE_ID, self.state_id))
        self.number += 1
        return avps

    async def initial(self) -> Message:
        return await self.peer.call(codec.CMD_CCR, APP_GX, [
            *self._head(gx.INITIAL), subscription(self.imsi),
            codec.new_avp(gx.AVP_CALLED_STATION_ID, "internet"),
            codec.new_avp(gx.AVP_SGSN_MCC_MNC, self.plmn, V),
            codec.new_avp(gx.AVP_FRAMED_IP_ADDRESS, b"\x0a\x2d\x00\x07")])

    async def update(self, *extra: Avp) -> Message:
        return await self.peer.call(codec.CMD_CCR, APP_GX,
                                    [*self._head(gx.UPDATE), *extra])

    async def terminate(self) -> Message:
        return await self.peer.call(codec.CMD_CCR, APP_GX, self._head(gx.TERMINATION))


# -- the NF under test ---------------------------------------------------------------


def policy_env(settings: Settings) -> dict[str, str]:
    # Big grants reach the demo plan's 15 GiB cap in a few updates (the plan is unchanged).
    nets = [{**n.model_dump(), "default_grant_bytes": 8 * GIB} for n in settings.networks]
    return {"NF_NETWORKS": json.dumps(nets),
            "NF_DIAMETER__NETWORKS": json.dumps(
                {"northwind": {"realms": [REALM], "peers": [PGW, PCRF, DRA]},
                 "bluepeak": {"realms": [BLUEPEAK_REALM], "peers": [BLUEPEAK_PGW]}})}


async def provision_lumen(client: httpx.AsyncClient, oam: str, supi: str) -> None:
    r = await client.post(oam + "/provisioning/v1/subscribers",
                          headers={"X-API-Key": "demo-key-lumen"}, json={
                              "supi": supi, "homeNetwork": "northwind",
                              "planOfferId": "lumen-unlimited"})
    assert r.status_code == 201, r.text


async def use_until_rar(chg: SmfSim, pgw: Peer, limit: int = 6) -> float:
    """Charge full grants over the SBI until a RAR arrives; the monotonic time the
    cap-crossing update was sent."""
    for _ in range(limit):
        seen = len(pgw.pushed)
        sent = time.monotonic()
        granted = chg.granted or 8 * GIB
        ex = await chg.update(Usage(granted // 4, granted - granted // 4, "QUOTA_THRESHOLD"),
                              requested=8 * GIB)
        assert ex.status == 200, ex.response
        try:
            await pgw.wait_push(codec.CMD_RAR, after=seen, timeout_s=1.0)
            return sent
        except TimeoutError:
            continue
    raise AssertionError("the cap was never reached")
