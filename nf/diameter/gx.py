"""Gx (TS 29.212, application 16777238): the PCEF's credit-control requests, translated to
the PCF's SM policy operations, and the PCF's decisions translated back to QoS AVPs.

Its one job is translation: a CCR read into what ``PcfService.create / update / delete``
take (the SBI's own ``SmPolicyContextData``, ``SmPolicyUpdateContextData``), so a 4G
session gets the same decision, the same EDRs and the same pushes as a 5G one; an
``SmPolicyDecision`` written as the AVPs of a CCA or RAR; a service's refusal as a
Result-Code. The application that calls the PCF with them is ``nf.diameter.gx_app``. It
never decides policy itself and never touches the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from nf.diameter import codec
from nf.diameter.base import PeerInfo
from nf.diameter.codec import VENDOR_3GPP, Avp, Message
from nf.errors import NfError
from nf.notify.port import FROM_DIAMETER
from nf.pcf.core import parse_bitrate
from nf.pcf.wire import SmPolicyContextData, SmPolicyUpdateContextData

APP = "gx"

# AVP codes: base and RFC 4006 (vendor 0) ...
AVP_FRAMED_IP_ADDRESS = 8
AVP_CALLED_STATION_ID = 30
AVP_FRAMED_IPV6_PREFIX = 97
AVP_RE_AUTH_REQUEST_TYPE = 285
AVP_DESTINATION_HOST = 293
AVP_CC_REQUEST_NUMBER = 415
AVP_CC_REQUEST_TYPE = 416
AVP_SUBSCRIPTION_ID = 443
AVP_SUBSCRIPTION_ID_DATA = 444
AVP_SUBSCRIPTION_ID_TYPE = 450
# ... and 3GPP (vendor 10415).
AVP_SGSN_MCC_MNC = 18
AVP_SUPPORTED_FEATURES = 628
AVP_FEATURE_LIST_ID = 629
AVP_FEATURE_LIST = 630
AVP_EVENT_TRIGGER = 1006
AVP_QOS_INFORMATION = 1016
AVP_QCI = 1028
AVP_ARP = 1034
AVP_APN_AMBR_DL = 1040
AVP_APN_AMBR_UL = 1041
AVP_REVALIDATION_TIME = 1042
AVP_SESSION_RELEASE_CAUSE = 1045
AVP_PRIORITY_LEVEL = 1046
AVP_PRE_EMPTION_CAPABILITY = 1047
AVP_PRE_EMPTION_VULNERABILITY = 1048
AVP_DEFAULT_EPS_BEARER_QOS = 1049
AVP_EXTENDED_APN_AMBR_DL = 2848
AVP_EXTENDED_APN_AMBR_UL = 2849

INITIAL, UPDATE, TERMINATION = 1, 2, 3
SUB_E164, SUB_IMSI = 0, 1
# Event-Trigger values (TS 29.212 §5.3.7) for the SBI's PolicyControlRequestTriggers.
PLMN_CHANGE = 4
REVALIDATION_TIMEOUT = 17
_TRIGGERS = {"PLMN_CH": PLMN_CHANGE, "RE_TIMEOUT": REVALIDATION_TIMEOUT}
_REPORTED = {PLMN_CHANGE: "PLMN_CH"}
# Session-Release-Cause (TS 29.212 §5.3.44) for the SBI's termination causes.
_RELEASE = {"UE_SUBSCRIPTION": 1, "INSUFFICIENT_RES": 2}
RELEASE_UNSPECIFIED = 0
AUTHORIZATION_REJECTED = 5003
MAX_U32 = 0xFFFFFFFF
# Features this PCRF supports in list 1 (TS 29.212 §5.4.1): Rel8 only.
FEATURES_LIST1 = 0x1


@dataclass(frozen=True)
class GxCcr:
    """What the PCF needs from one CCR."""

    session_id: str
    request_type: int
    request_number: int
    supi: str | None
    gpsi: str | None
    apn: str | None
    serving_plmn: str | None
    pdu_type: str
    triggers: tuple[int, ...]
    ambr_bps: tuple[int, int] | None  # the PCEF's requested APN-AMBR (UL, DL)
    features: int | None  # Feature-List of list 1, when the PCEF sent Supported-Features


def _missing(code: int, vendor: int = 0) -> codec.DecodeError:
    return codec.DecodeError(codec.MISSING_AVP, f"AVP {code} is missing",
                             codec.raw_avp(code, b"", vendor))


def subscriber_ids(msg: Message) -> tuple[str | None, str | None]:
    """(SUPI, GPSI) from the Subscription-Ids: ``imsi-…`` from an IMSI, ``msisdn-…`` from
    an E.164 number."""
    supi = gpsi = None
    for sub in codec.find_all(msg, AVP_SUBSCRIPTION_ID):
        kind = codec.get_int(sub, AVP_SUBSCRIPTION_ID_TYPE)
        data = codec.get_str(sub, AVP_SUBSCRIPTION_ID_DATA)
        if kind == SUB_IMSI and data:
            supi = f"imsi-{data}"
        elif kind == SUB_E164 and data:
            gpsi = f"msisdn-{data}"
    return supi, gpsi


def parse_ccr(msg: Message) -> GxCcr:
    """The CCR's fields; ``codec.DecodeError`` (5005 / 5004 with Failed-AVP) otherwise."""
    session_id = codec.get_str(msg, codec.AVP_SESSION_ID)
    rtype = codec.get_int(msg, AVP_CC_REQUEST_TYPE)
    number = codec.get_int(msg, AVP_CC_REQUEST_NUMBER)
    if session_id is None:
        raise _missing(codec.AVP_SESSION_ID)
    if rtype is None:
        raise _missing(AVP_CC_REQUEST_TYPE)
    if number is None:
        raise _missing(AVP_CC_REQUEST_NUMBER)
    if rtype not in (INITIAL, UPDATE, TERMINATION):
        raise codec.DecodeError(codec.INVALID_AVP_VALUE, f"CC-Request-Type {rtype}",
                                codec.find(msg, AVP_CC_REQUEST_TYPE))
    supi, gpsi = subscriber_ids(msg)
    plmn = codec.get_str(msg, AVP_SGSN_MCC_MNC, VENDOR_3GPP)
    if plmn is not None and not (plmn.isdigit() and len(plmn) in (5, 6)):
        raise codec.DecodeError(codec.INVALID_AVP_VALUE, f"3GPP-SGSN-MCC-MNC {plmn!r}",
                                codec.find(msg, AVP_SGSN_MCC_MNC, VENDOR_3GPP))
    v4 = codec.find(msg, AVP_FRAMED_IP_ADDRESS) is not None
    v6 = codec.find(msg, AVP_FRAMED_IPV6_PREFIX) is not None
    pdu_type = "IPV4V6" if v4 and v6 else "IPV6" if v6 else "IPV4"
    triggers = tuple(codec.int_value(a)
                     for a in codec.find_all(msg, AVP_EVENT_TRIGGER, VENDOR_3GPP))
    ambr = None
    qos = codec.find(msg, AVP_QOS_INFORMATION, VENDOR_3GPP)
    if qos is not None:
        ul = codec.get_int(qos, AVP_APN_AMBR_UL, VENDOR_3GPP)
        dl = codec.get_int(qos, AVP_APN_AMBR_DL, VENDOR_3GPP)
        ambr = (ul, dl) if ul is not None and dl is not None else None
    features = None
    for sf in codec.find_all(msg, AVP_SUPPORTED_FEATURES, VENDOR_3GPP):
        if codec.get_int(sf, AVP_FEATURE_LIST_ID, VENDOR_3GPP) == 1:
            features = codec.get_int(sf, AVP_FEATURE_LIST, VENDOR_3GPP) or 0
    return GxCcr(session_id, rtype, number, supi, gpsi,
                 codec.get_str(msg, AVP_CALLED_STATION_ID), plmn, pdu_type, triggers,
                 ambr, features)


def client_of(req: Message, peer: PeerInfo) -> tuple[str, str]:
    """The requesting client's Origin-Host and Origin-Realm (behind a DRA, not the
    connected peer's): where the session's RAR / SNR are addressed."""
    return (codec.get_str(req, codec.AVP_ORIGIN_HOST) or peer.origin_host,
            codec.get_str(req, codec.AVP_ORIGIN_REALM) or peer.origin_realm)


def _plmn(plmn: str | None) -> dict[str, str] | None:
    return None if plmn is None else {"mcc": plmn[:3], "mnc": plmn[3:]}


def context_data(ccr: GxCcr, uri: str) -> SmPolicyContextData:
    """The SBI's create body for a CCR-I. A 4G session has no PDU session id (0) and sits
    on the default slice (SST 1)."""
    if ccr.supi is None:
        raise codec.DecodeError(codec.MISSING_AVP, "no Subscription-Id of type IMSI",
                                codec.new_avp(AVP_SUBSCRIPTION_ID, [
                                    codec.new_avp(AVP_SUBSCRIPTION_ID_TYPE, SUB_IMSI),
                                    codec.new_avp(AVP_SUBSCRIPTION_ID_DATA, "")]))
    body: dict[str, Any] = {
        "supi": ccr.supi, "pduSessionId": 0, "pduSessionType": ccr.pdu_type,
        "dnn": ccr.apn or "internet", "sliceInfo": {"sst": 1}, "notificationUri": uri}
    if ccr.gpsi is not None:
        body["gpsi"] = ccr.gpsi
    if ccr.serving_plmn is not None:
        body["servingNetwork"] = _plmn(ccr.serving_plmn)
    if ccr.ambr_bps is not None:
        body["subsSessAmbr"] = {"uplink": f"{ccr.ambr_bps[0]} bps",
                                "downlink": f"{ccr.ambr_bps[1]} bps"}
    try:
        return SmPolicyContextData.model_validate(body, context=FROM_DIAMETER)
    except ValidationError as e:
        raise codec.DecodeError(codec.INVALID_AVP_VALUE,
                                f"not a valid session: {e.errors()[0]['msg']}") from None


def update_data(ccr: GxCcr) -> SmPolicyUpdateContextData:
    """The SBI's update body for a CCR-U: the serving network and what was reported."""
    body: dict[str, Any] = {}
    reported = [_REPORTED[t] for t in ccr.triggers if t in _REPORTED]
    if reported:
        body["repPolicyCtrlReqTriggers"] = reported
    if ccr.serving_plmn is not None:
        body["servingNetwork"] = _plmn(ccr.serving_plmn)
    return SmPolicyUpdateContextData.model_validate(body)


# -- decisions → AVPs ---------------------------------------------------------------------


def _u32(code: int, v: int) -> Avp:
    return codec.new_avp(code, min(v, MAX_U32), VENDOR_3GPP)


def _arp(arp: Mapping[str, Any]) -> Avp:
    return codec.new_avp(AVP_ARP, [
        codec.new_avp(AVP_PRIORITY_LEVEL, int(arp.get("priorityLevel", 8)), VENDOR_3GPP),
        # 0 = ENABLED, 1 = DISABLED for both (TS 29.212 §5.3.46 and §5.3.47).
        codec.new_avp(AVP_PRE_EMPTION_CAPABILITY,
                      0 if arp.get("preemptCap") == "MAY_PREEMPT" else 1, VENDOR_3GPP),
        codec.new_avp(AVP_PRE_EMPTION_VULNERABILITY,
                      1 if arp.get("preemptVuln") == "NOT_PREEMPTABLE" else 0, VENDOR_3GPP),
    ], VENDOR_3GPP)


def apn_ambr_bps(decision: Mapping[str, Any]) -> tuple[int, int] | None:
    """The session AMBR of an ``SmPolicyDecision`` in bit/s (UL, DL), if it sets one."""
    for rule in (decision.get("sessRules") or {}).values():
        amb = rule.get("authSessAmbr") if isinstance(rule, dict) else None
        if amb:
            return (parse_bitrate(amb["uplink"]) * 1000, parse_bitrate(amb["downlink"]) * 1000)
    return None


def decision_avps(decision: Mapping[str, Any]) -> list[Avp]:
    """An ``SmPolicyDecision`` as the AVPs of a CCA or RAR: QoS-Information with the
    APN-AMBR (bit/s; above 2^32-1 also Extended-APN-AMBR in kbit/s), Default-EPS-Bearer-QoS,
    Event-Trigger and Revalidation-Time."""
    out: list[Avp] = []
    bps = apn_ambr_bps(decision)
    if bps is not None:
        qos = [_u32(AVP_APN_AMBR_UL, bps[0]), _u32(AVP_APN_AMBR_DL, bps[1])]
        if max(bps) > MAX_U32:
            qos += [_u32(AVP_EXTENDED_APN_AMBR_UL, bps[0] // 1000),
                    _u32(AVP_EXTENDED_APN_AMBR_DL, bps[1] // 1000)]
        out.append(codec.new_avp(AVP_QOS_INFORMATION, qos, VENDOR_3GPP))
    for rule in (decision.get("sessRules") or {}).values():
        dq = rule.get("authDefQos") if isinstance(rule, dict) else None
        if dq:
            out.append(codec.new_avp(AVP_DEFAULT_EPS_BEARER_QOS, [
                codec.new_avp(AVP_QCI, int(dq["5qi"]), VENDOR_3GPP),
                _arp(dq.get("arp") or {})], VENDOR_3GPP))
            break
    triggers = decision.get("policyCtrlReqTriggers")
    if triggers is not None:
        values = list(dict.fromkeys(_TRIGGERS[t] for t in triggers if t in _TRIGGERS))
        out += [codec.new_avp(AVP_EVENT_TRIGGER, v, VENDOR_3GPP) for v in values]
    if decision.get("revalidationTime"):
        when = datetime.fromisoformat(str(decision["revalidationTime"]))
        out.append(codec.new_avp(AVP_REVALIDATION_TIME, when, VENDOR_3GPP))
    return out


def release_cause(cause: str | None) -> int:
    return _RELEASE.get(cause or "", RELEASE_UNSPECIFIED)


def result_of(e: NfError) -> tuple[int | None, tuple[int, int] | None]:
    """The Result-Code (or 3GPP Experimental-Result) for a service's refusal."""
    if e.cause == "USER_UNKNOWN":
        return codec.USER_UNKNOWN, None
    if e.cause == "UNKNOWN_POLICY_COUNTERS":
        return None, (VENDOR_3GPP, 5570)
    if e.status == 404:
        return codec.UNKNOWN_SESSION_ID, None
    if e.status == 403:
        return AUTHORIZATION_REJECTED, None
    if e.status in (429, 503):
        return codec.TOO_BUSY, None
    return codec.UNABLE_TO_COMPLY, None
