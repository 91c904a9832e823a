"""A test SMF: a charging client driving realistic Nchf_ConvergedCharging sequences over real
HTTP/2. What the NF pushes back (notifications) is received by ``tests.peers``'
``NotificationReceiver``; give its ``url(...)`` to ``SmfSim(notify_uri=...)``.

``SmfSim`` -- one charging session at a time as an SMF would run it (see the class). It uses
an ``httpx.AsyncClient`` you give it (``http2=True, http1=False`` for real h2c), keeps the
``invocationSequenceNumber``, builds ``ChargingDataRequest`` bodies with
``multipleUnitUsage`` (``requestedUnit`` + ``usedUnitContainer``), and can replay the last
request byte for byte (a retransmission). Every exchange is kept in ``exchanges`` so tests
can validate them against the 3GPP document. The policy side extends this module with an
Npcf_SMPolicyControl client in the same style.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

CHF_ROOT = "/nchf-convergedcharging/v3"


# -- the charging client --------------------------------------------------------------------


@dataclass
class Exchange:
    """One request and its answer, for conformance checks."""

    method: str
    path: str
    request: dict[str, Any] | None
    status: int
    response: Any
    headers: dict[str, str]
    latency_s: float


@dataclass
class Usage:
    """One usedUnitContainer: bytes up and down, and why it was reported."""

    uplink: int
    downlink: int
    reason: str | None = None  # e.g. "QUOTA_THRESHOLD", "VALIDITY_TIME", "FINAL"

    @property
    def total(self) -> int:
        return self.uplink + self.downlink


# Sends one POST (path, JSON body) and returns (status, parsed body or None, headers).
Transport = Callable[[str, dict[str, Any]], Awaitable[tuple[int, Any, dict[str, str]]]]


def httpx_transport(client: httpx.AsyncClient, base_url: str) -> Transport:
    """Real HTTP: give it ``httpx.AsyncClient(http2=True, http1=False)`` for h2c."""

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        r = await client.post(base_url + path, json=body)
        try:
            payload: Any = r.json() if r.content else None
        except ValueError:
            payload = r.text
        return r.status_code, payload, {k.lower(): v for k, v in r.headers.items()}

    return post


@dataclass
class SmfSim:
    """An SMF running one PDU session's charging.

    ``create`` opens the charging session, each ``update`` reports usage and asks for more
    (``invocationSequenceNumber`` + 1), ``release`` reports the last usage and closes.
    ``retransmit`` sends the previous request again unchanged, as an SMF does when an answer
    got lost. ``transport`` carries the requests: ``httpx_transport(client, nf.sbi)`` over
    real HTTP/2, or any coroutine with the same shape (an in-process test client).
    """

    transport: Transport
    supi: str
    plmn: str = "00101"  # the SMF's (host network's) PLMN: nfConsumerIdentification
    serving_plmn: str | None = None  # defaults to ``plmn`` (not roaming)
    notify_uri: str = "http://127.0.0.1:9/notify"
    rating_group: int = 10
    pdu_session_id: int = 1
    charging_id: int = field(default_factory=lambda: uuid.uuid4().int % 2**31)
    nf_name: str = "0c5a6a9e-2a8f-4d4e-9d1f-5f1f1b1b1b1b"
    ref: str | None = None
    isn: int = -1
    exchanges: list[Exchange] = field(default_factory=list)
    last_request: tuple[str, dict[str, Any]] | None = None
    granted: int = 0  # the last grant for ``rating_group``

    def _plmn(self, plmn: str) -> dict[str, str]:
        return {"mcc": plmn[:3], "mnc": plmn[3:]}

    def body(self, *, requested: int | None, used: Usage | None = None,
             final: bool = False) -> dict[str, Any]:
        self.isn += 1
        serving = self.serving_plmn or self.plmn
        body: dict[str, Any] = {
            "subscriberIdentifier": self.supi,
            "nfConsumerIdentification": {
                "nodeFunctionality": "SMF",
                "nFName": self.nf_name,
                "nFPLMNID": self._plmn(self.plmn),
            },
            "invocationTimeStamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "invocationSequenceNumber": self.isn,
            "notifyUri": self.notify_uri,
            "serviceSpecificationInfo": "32255-h00",
            "pDUSessionChargingInformation": {
                "chargingId": self.charging_id,
                "pduSessionInformation": {
                    "pduSessionID": self.pdu_session_id,
                    "networkSlicingInfo": {"sNSSAI": {"sst": 1}},
                    "dnnId": "internet",
                    "servingNetworkFunctionID": {
                        "servingNetworkFunctionInformation": {"nodeFunctionality": "SMF"}},
                    "servingCNPlmnId": self._plmn(serving),
                    "ratType": "NR",
                },
            },
        }
        mu: dict[str, Any] = {"ratingGroup": self.rating_group}
        if requested is not None and not final:
            mu["requestedUnit"] = {"totalVolume": requested} if requested else {}
        if used is not None:
            container: dict[str, Any] = {
                "localSequenceNumber": self.isn,
                "totalVolume": used.total, "uplinkVolume": used.uplink,
                "downlinkVolume": used.downlink,
            }
            if used.reason:
                container["quotaManagementIndicator"] = "ONLINE_CHARGING"
                container["triggers"] = [{"triggerType": used.reason,
                                          "triggerCategory": "IMMEDIATE_REPORT"}]
            mu["usedUnitContainer"] = [container]
        if requested is not None or used is not None:
            body["multipleUnitUsage"] = [mu]
        if final:
            body["triggers"] = [{"triggerType": "FINAL", "triggerCategory": "IMMEDIATE_REPORT"}]
        return body

    async def _post(self, path: str, body: dict[str, Any]) -> Exchange:
        self.last_request = (path, body)
        t0 = time.perf_counter()
        status, payload, headers = await self.transport(path, body)
        ex = Exchange("POST", path, body, status, payload, headers,
                      time.perf_counter() - t0)
        self.exchanges.append(ex)
        if isinstance(payload, dict) and status < 300:
            self.granted = granted_for(payload, self.rating_group)
        return ex

    async def create(self, requested: int | None = 0) -> Exchange:
        self.isn = -1
        self.ref = None
        ex = await self._post(f"{CHF_ROOT}/chargingdata", self.body(requested=requested))
        if ex.status == 201:
            self.ref = ex.headers["location"].rstrip("/").rsplit("/", 1)[-1]
        return ex

    async def update(self, used: Usage | None, requested: int | None = 0) -> Exchange:
        assert self.ref, "create first"
        return await self._post(f"{CHF_ROOT}/chargingdata/{self.ref}/update",
                                self.body(requested=requested, used=used))

    async def release(self, used: Usage | None = None) -> Exchange:
        assert self.ref, "create first"
        return await self._post(f"{CHF_ROOT}/chargingdata/{self.ref}/release",
                                self.body(requested=None, used=used, final=True))

    async def retransmit(self) -> Exchange:
        assert self.last_request is not None
        path, body = self.last_request
        return await self._post(path, body)


def granted_for(response: dict[str, Any], rating_group: int) -> int:
    """``grantedUnit.totalVolume`` for a rating group in a ChargingDataResponse (0 if none)."""
    for mu in response.get("multipleUnitInformation") or []:
        if mu.get("ratingGroup") == rating_group:
            return int((mu.get("grantedUnit") or {}).get("totalVolume") or 0)
    return 0


def unit_info(response: dict[str, Any], rating_group: int) -> dict[str, Any]:
    for mu in response.get("multipleUnitInformation") or []:
        if mu.get("ratingGroup") == rating_group:
            return dict(mu)
    raise KeyError(f"no multipleUnitInformation for rating group {rating_group}")


def new_supi() -> str:
    return "imsi-00101" + str(uuid.uuid4().int)[:10]


# -- the policy client (Npcf_SMPolicyControl) -----------------------------------------------

PCF_ROOT = "/npcf-smpolicycontrol/v1"


@dataclass
class PolicySim:
    """An SMF's side of one SM policy association over HTTP/2.

    ``create`` sends ``SmPolicyContextData`` (the serving network included), ``update``
    reports a PLMN change or a session-AMBR change, ``delete`` ends the association. Every
    ``httpx.Response`` is kept in ``responses`` (request included) for conformance checks.
    """

    client: httpx.AsyncClient
    base_url: str
    supi: str
    notification_uri: str
    serving_plmn: str = "00101"
    pdu_session_id: int = 1
    dnn: str = "internet"
    gpsi: str | None = None
    policy_id: str | None = None
    location: str | None = None
    responses: list[httpx.Response] = field(default_factory=list)

    @staticmethod
    def plmn(plmn: str) -> dict[str, str]:
        return {"mcc": plmn[:3], "mnc": plmn[3:]}

    def context(self) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "supi": self.supi,
            "pduSessionId": self.pdu_session_id,
            "pduSessionType": "IPV4",
            "dnn": self.dnn,
            "notificationUri": self.notification_uri,
            "sliceInfo": {"sst": 1, "sd": "000001"},
            "servingNetwork": self.plmn(self.serving_plmn),
            "accessType": "3GPP_ACCESS",
            "ratType": "NR",
            "subsSessAmbr": {"uplink": "1 Gbps", "downlink": "1 Gbps"},
            "subsDefQos": {"5qi": 9, "arp": {"priorityLevel": 8, "preemptCap": "NOT_PREEMPT",
                                              "preemptVuln": "PREEMPTABLE"}},
        }
        if self.gpsi:
            ctx["gpsi"] = self.gpsi
        return ctx

    async def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        r = await self.client.request(method, self.base_url + path, json=body)
        self.responses.append(r)
        return r

    async def create(self) -> httpx.Response:
        r = await self._send("POST", f"{PCF_ROOT}/sm-policies", self.context())
        if r.status_code == 201:
            self.location = r.headers["location"]
            self.policy_id = self.location.rstrip("/").rsplit("/", 1)[-1]
        return r

    async def get(self) -> httpx.Response:
        assert self.policy_id, "create first"
        return await self._send("GET", f"{PCF_ROOT}/sm-policies/{self.policy_id}")

    async def move_to(self, plmn: str) -> httpx.Response:
        """The UE moved to another network: PLMN_CH with the new serving network."""
        assert self.policy_id, "create first"
        self.serving_plmn = plmn
        return await self._send(
            "POST", f"{PCF_ROOT}/sm-policies/{self.policy_id}/update",
            {"repPolicyCtrlReqTriggers": ["PLMN_CH"], "servingNetwork": self.plmn(plmn)})

    async def delete(self) -> httpx.Response:
        assert self.policy_id, "create first"
        return await self._send("POST", f"{PCF_ROOT}/sm-policies/{self.policy_id}/delete",
                                {"servingNetwork": self.plmn(self.serving_plmn)})


def session_ambr(decision: dict[str, Any]) -> dict[str, str]:
    """The authSessAmbr of the (single) session rule of an SmPolicyDecision."""
    rules = decision.get("sessRules") or {}
    assert len(rules) == 1, rules
    return dict(next(iter(rules.values()))["authSessAmbr"])
