"""Gy's messages as the CHF's wire model: a CCR read into ``Ccr`` and made the SBI's
``ChargingDataRequest``; the CHF's ``ChargingDataResponse`` made the CCA's AVPs.

Its one job is the translation itself, with no service and no I/O (``nf.diameter.gy``
calls the CHF with it). Mapping: Session-Id → the charging reference (a hash of it and the
peer's host network, so every request of the session finds it without a table);
CC-Request-Number → invocation sequence number; each Multiple-Services-Credit-Control →
one ``multipleUnitUsage`` (Rating-Group, RSU, USU in octets); 3GPP-SGSN-MCC-MNC (or
3GPP-User-Location-Info) → the serving PLMN, which decides roaming and its passes; the
peer's host network → the consumer PLMN, which picks that network's grant size, validity
and thresholds; the Subscription-Id → the SUPI (END_USER_IMSI), or the GPSI the
subscriber is found by (END_USER_E164).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nf.chf.wire import ChargingDataRequest
from nf.diameter import codec
from nf.diameter.base import APP_GY
from nf.diameter.codec import Avp, DecodeError, Message
from nf.notify.port import FROM_DIAMETER

V = codec.VENDOR_3GPP

AVP_CC_REQUEST_NUMBER = 415
AVP_CC_REQUEST_TYPE = 416
AVP_SUBSCRIPTION_ID = 443
AVP_SUBSCRIPTION_ID_DATA = 444
AVP_SUBSCRIPTION_ID_TYPE = 450
AVP_MSCC = 456
AVP_RATING_GROUP = 432
AVP_RSU = 437
AVP_USU = 446
AVP_GSU = 431
AVP_CC_TOTAL_OCTETS = 421
AVP_CC_INPUT_OCTETS = 412
AVP_CC_OUTPUT_OCTETS = 414
AVP_VALIDITY_TIME = 448
AVP_FUI = 430
AVP_FINAL_UNIT_ACTION = 449
AVP_REDIRECT_SERVER = 434
AVP_REDIRECT_ADDRESS_TYPE = 433
AVP_REDIRECT_SERVER_ADDRESS = 435
AVP_REPORTING_REASON = 872  # 3GPP
AVP_VOLUME_QUOTA_THRESHOLD = 869  # 3GPP
AVP_QUOTA_HOLDING_TIME = 871  # 3GPP
AVP_SERVICE_INFORMATION = 873  # 3GPP
AVP_PS_INFORMATION = 874  # 3GPP
AVP_SGSN_MCC_MNC = 18  # 3GPP
AVP_USER_LOCATION_INFO = 22  # 3GPP
AVP_EVENT_TIMESTAMP = 55
AVP_CREDIT_CONTROL_FAILURE_HANDLING = 427
AVP_RE_AUTH_REQUEST_TYPE = 285
AVP_DESTINATION_HOST = 293
AUTHORIZE_ONLY = 0

INITIAL, UPDATE, TERMINATION, EVENT = 1, 2, 3, 4
SUB_E164, SUB_IMSI = 0, 1
FUA = {"TERMINATE": 0, "REDIRECT": 1, "RESTRICT_ACCESS": 2}
REDIRECT_URL = 2
CCFH_TERMINATE = 0
# A Multiple-Services-Credit-Control without Rating-Group (Open5GS sends one): charged on
# this rating group and answered without one.
NO_RATING_GROUP = 0

UNIT_RESULT = {"SUCCESS": codec.SUCCESS, "QUOTA_LIMIT_REACHED": codec.CREDIT_LIMIT_REACHED,
               "END_USER_SERVICE_DENIED": 4010, "USER_UNKNOWN": codec.USER_UNKNOWN,
               "RATING_FAILED": 5031}
REFUSAL_RESULT = {"USER_UNKNOWN": codec.USER_UNKNOWN, "END_USER_REQUEST_DENIED": 4010}
REPORTING_REASONS = {0: "THRESHOLD", 1: "QHT", 2: "FINAL", 3: "QUOTA_EXHAUSTED",
                     4: "VALIDITY_TIME", 5: "OTHER_QUOTA_TYPE", 6: "RATING_CONDITION_CHANGE",
                     7: "FORCED_REAUTHORISATION", 8: "POOL_EXHAUSTED",
                     9: "UNUSED_QUOTA_TIMER"}


@dataclass(frozen=True)
class Usage:
    total: int
    uplink: int | None
    downlink: int | None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mscc:
    rating_group: int | None
    requested: int | None  # None: no RSU; 0: RSU without a volume (the network's grant)
    used: tuple[Usage, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ccr:
    session_id: str
    origin_host: str
    request_type: int
    request_number: int
    imsi: str | None
    msisdn: str | None
    serving_plmn: str | None
    event_time: datetime | None
    units: tuple[Mscc, ...] = field(default_factory=tuple)


def charging_ref(network_id: str, session_id: str) -> str:
    """The CHF reference of a Gy session: derived from the Session-Id (globally unique per
    RFC 6733 §8.8) and the host network of the peer that sent it, so a retransmission or a
    restart lands on the same session, and a peer of another host network that names the
    Session-Id finds none (the SBI's ownership check, at no cost)."""
    key = f"{network_id}|{session_id}".encode()
    return "gy" + hashlib.blake2b(key, digest_size=11).hexdigest()


def _missing(code: int, vendor: int = 0) -> DecodeError:
    return DecodeError(codec.MISSING_AVP, f"AVP {code} is missing",
                       codec.raw_avp(code, b"", vendor))


def plmn_of_uli(uli: bytes) -> str | None:
    """MCC+MNC of a 3GPP-User-Location-Info (TS 29.061 §16.4.7: a type octet, then the
    PLMN in TBCD)."""
    if len(uli) < 4:
        return None
    d = uli[1:4]
    digits = [d[0] & 0xF, d[0] >> 4, d[1] & 0xF, d[2] & 0xF, d[2] >> 4, d[1] >> 4]
    if any(x > 9 for x in digits[:5]) or (digits[5] > 9 and digits[5] != 0xF):
        return None
    return "".join(str(x) for x in digits if x != 0xF)


def _serving_plmn(msg: Message) -> str | None:
    places: list[Message | Avp] = [msg]
    si = codec.find(msg, AVP_SERVICE_INFORMATION, V)
    ps = codec.find(si, AVP_PS_INFORMATION, V) if si is not None else None
    if ps is not None:
        places.insert(0, ps)
    for where in places:
        plmn = codec.get_str(where, AVP_SGSN_MCC_MNC, V)
        if plmn and plmn.isdigit() and len(plmn) in (5, 6):
            return plmn
        uli = codec.get_bytes(where, AVP_USER_LOCATION_INFO, V)
        if uli:
            got = plmn_of_uli(uli)
            if got:
                return got
    return None


def _usage(usu: Avp) -> Usage:
    ul = codec.get_int(usu, AVP_CC_INPUT_OCTETS)
    dl = codec.get_int(usu, AVP_CC_OUTPUT_OCTETS)
    total = codec.get_int(usu, AVP_CC_TOTAL_OCTETS)
    if total is None:
        total = (ul or 0) + (dl or 0)
    reasons = tuple(REPORTING_REASONS.get(codec.int_value(a), "OTHER")
                    for a in codec.find_all(usu, AVP_REPORTING_REASON, V))
    return Usage(total, ul, dl, reasons)


def parse_ccr(msg: Message) -> Ccr:
    """The CCR's fields the CHF needs; ``DecodeError`` (5005 / 5004 with Failed-AVP) for a
    missing or invalid mandatory AVP."""
    sid = codec.get_str(msg, codec.AVP_SESSION_ID)
    if not sid:
        raise _missing(codec.AVP_SESSION_ID)
    host = codec.get_str(msg, codec.AVP_ORIGIN_HOST) or ""
    rtype = codec.get_int(msg, AVP_CC_REQUEST_TYPE)
    if rtype is None:
        raise _missing(AVP_CC_REQUEST_TYPE)
    if rtype not in (INITIAL, UPDATE, TERMINATION, EVENT):
        raise DecodeError(codec.INVALID_AVP_VALUE, f"CC-Request-Type {rtype}",
                          codec.find(msg, AVP_CC_REQUEST_TYPE))
    number = codec.get_int(msg, AVP_CC_REQUEST_NUMBER)
    if number is None:
        raise _missing(AVP_CC_REQUEST_NUMBER)
    imsi = msisdn = None
    for sub in codec.find_all(msg, AVP_SUBSCRIPTION_ID):
        kind = codec.get_int(sub, AVP_SUBSCRIPTION_ID_TYPE)
        data = codec.get_str(sub, AVP_SUBSCRIPTION_ID_DATA)
        if kind == SUB_IMSI and data and imsi is None:
            imsi = data
        elif kind == SUB_E164 and data and msisdn is None:
            msisdn = data
    units = []
    for m in codec.find_all(msg, AVP_MSCC):
        rsu = codec.find(m, AVP_RSU)
        requested = None
        if rsu is not None:
            requested = codec.get_int(rsu, AVP_CC_TOTAL_OCTETS)
            if requested is None:
                ul = codec.get_int(rsu, AVP_CC_INPUT_OCTETS)
                dl = codec.get_int(rsu, AVP_CC_OUTPUT_OCTETS)
                requested = (ul or 0) + (dl or 0)
        reasons = tuple(REPORTING_REASONS.get(codec.int_value(a), "OTHER")
                        for a in codec.find_all(m, AVP_REPORTING_REASON, V))
        units.append(Mscc(codec.get_int(m, AVP_RATING_GROUP), requested,
                          tuple(_usage(u) for u in codec.find_all(m, AVP_USU)), reasons))
    return Ccr(sid, host, rtype, number, imsi, msisdn, _serving_plmn(msg),
               codec.get_time(msg, AVP_EVENT_TIMESTAMP), tuple(units))


def gpsi_of(msisdn: str) -> str | None:
    """The GPSI of an END_USER_E164 Subscription-Id-Data (international number, maybe
    with a leading +), as the ledger keeps it; None for one that is no E.164 number."""
    digits = msisdn.removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 5 <= len(digits) <= 15):
        return None
    return f"msisdn-{digits}"


def to_sbi(ccr: Ccr, consumer_plmn: str | None, now: datetime,
           supi: str | None = None, notify_uri: str | None = None) -> ChargingDataRequest:
    """The ``ChargingDataRequest`` an SMF would have sent for this CCR; ``supi``: the
    subscriber found by the CCR's E.164 number when it carries no IMSI; ``notify_uri``:
    where the CHF's re-authorisations go (``diameter://``: a Gy RAR)."""
    mus: list[dict[str, Any]] = []
    for u in ccr.units:
        mu: dict[str, Any] = {"ratingGroup": u.rating_group if u.rating_group is not None
                              else NO_RATING_GROUP}
        if u.requested is not None:
            mu["requestedUnit"] = {"totalVolume": u.requested} if u.requested else {}
        if u.used:
            mu["usedUnitContainer"] = [{
                "localSequenceNumber": i, "totalVolume": x.total,
                **({"uplinkVolume": x.uplink} if x.uplink is not None else {}),
                **({"downlinkVolume": x.downlink} if x.downlink is not None else {}),
                "triggers": [{"triggerType": r, "triggerCategory": "IMMEDIATE_REPORT"}
                             for r in (*x.reasons, *u.reasons)],
            } for i, x in enumerate(u.used)]
        mus.append(mu)
    ident: dict[str, Any] = {"nodeFunctionality": "PGW_C_SMF", "nFName": ccr.origin_host}
    if consumer_plmn:
        ident["nFPLMNID"] = {"mcc": consumer_plmn[:3], "mnc": consumer_plmn[3:]}
    body: dict[str, Any] = {
        "nfConsumerIdentification": ident,
        "invocationTimeStamp": ccr.event_time or now,
        "invocationSequenceNumber": ccr.request_number,
        "multipleUnitUsage": mus or None,
    }
    if supi or ccr.imsi:
        body["subscriberIdentifier"] = supi or f"imsi-{ccr.imsi}"
    if ccr.serving_plmn:
        body["pDUSessionChargingInformation"] = {"pduSessionInformation": {
            "servingCNPlmnId": {"mcc": ccr.serving_plmn[:3], "mnc": ccr.serving_plmn[3:]}}}
    if notify_uri:
        body["notifyUri"] = notify_uri
    return ChargingDataRequest.model_validate(body, context=FROM_DIAMETER)


def _mscc(unit: dict[str, Any], asked_rg: bool) -> Avp:
    inner: list[Avp] = []
    granted = unit.get("grantedUnit")
    if granted is not None:
        inner.append(codec.new_avp(AVP_GSU, [
            codec.new_avp(AVP_CC_TOTAL_OCTETS, int(granted.get("totalVolume", 0)))]))
    if asked_rg:
        inner.append(codec.new_avp(AVP_RATING_GROUP, int(unit["ratingGroup"])))
    if unit.get("validityTime"):
        inner.append(codec.new_avp(AVP_VALIDITY_TIME, int(unit["validityTime"])))
    inner.append(codec.new_avp(codec.AVP_RESULT_CODE,
                               UNIT_RESULT.get(str(unit.get("resultCode")),
                                               codec.UNABLE_TO_COMPLY)))
    fui = unit.get("finalUnitIndication")
    if fui is not None:
        action = str(fui.get("finalUnitAction", "TERMINATE"))
        members = [codec.new_avp(AVP_FINAL_UNIT_ACTION, FUA.get(action, 0))]
        server = fui.get("redirectServer")
        if action == "REDIRECT" and server:
            members.append(codec.new_avp(AVP_REDIRECT_SERVER, [
                codec.new_avp(AVP_REDIRECT_ADDRESS_TYPE, REDIRECT_URL),
                codec.new_avp(AVP_REDIRECT_SERVER_ADDRESS,
                              str(server["redirectServerAddress"]))]))
        inner.append(codec.new_avp(AVP_FUI, members))
    if unit.get("volumeQuotaThreshold") is not None:
        inner.append(codec.new_avp(AVP_VOLUME_QUOTA_THRESHOLD,
                                   int(unit["volumeQuotaThreshold"]), V))
    if unit.get("quotaHoldingTime"):
        inner.append(codec.new_avp(AVP_QUOTA_HOLDING_TIME, int(unit["quotaHoldingTime"]), V))
    return codec.new_avp(AVP_MSCC, inner)


def cca_avps(ccr: Ccr, body: dict[str, Any] | None) -> tuple[int, list[Avp]]:
    """Result-Code and the CCA's own AVPs from the CHF's answer body."""
    head = [codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
            codec.new_avp(AVP_CC_REQUEST_TYPE, ccr.request_type),
            codec.new_avp(AVP_CC_REQUEST_NUMBER, ccr.request_number)]
    if body is None:
        return codec.SUCCESS, head
    rc = codec.SUCCESS
    refusal = body.get("invocationResult")
    if refusal is not None:
        rc = REFUSAL_RESULT.get(str(refusal.get("error", {}).get("cause")),
                                codec.UNABLE_TO_COMPLY)
        head.append(codec.new_avp(AVP_CREDIT_CONTROL_FAILURE_HANDLING, CCFH_TERMINATE))
    asked = {u.rating_group for u in ccr.units}
    for unit in body.get("multipleUnitInformation") or []:
        head.append(_mscc(unit, unit.get("ratingGroup") in asked))
    return rc, head


def push_request(session_id: str, body: Mapping[str, Any], *, origin_host: str,
                 origin_realm: str, dest_host: str, dest_realm: str) -> Message:
    """The Gy request for a CHF notification of a Gy session (RFC 4006 §5.5): a
    ``REAUTHORIZATION`` → RAR (AUTHORIZE_ONLY, the Rating-Group when there is one), which
    brings the PGW's CCR-U; an ``ABORT_CHARGING`` → ASR. ``ValueError`` for another body."""
    avps: list[Avp] = [
        codec.new_avp(codec.AVP_SESSION_ID, session_id),
        codec.new_avp(codec.AVP_ORIGIN_HOST, origin_host.encode()),
        codec.new_avp(codec.AVP_ORIGIN_REALM, origin_realm.encode()),
        codec.new_avp(codec.AVP_DESTINATION_REALM, dest_realm.encode()),
        codec.new_avp(AVP_DESTINATION_HOST, dest_host.encode()),
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY)]
    kind = body.get("notificationType")
    if kind == "ABORT_CHARGING":
        return codec.request(codec.CMD_ASR, APP_GY, avps, hop_by_hop=0, end_to_end=0,
                             proxiable=True)
    if kind != "REAUTHORIZATION":
        raise ValueError(f"no Gy request for notificationType {kind!r}")
    avps.append(codec.new_avp(AVP_RE_AUTH_REQUEST_TYPE, AUTHORIZE_ONLY))
    groups = [int(d["ratingGroup"]) for d in body.get("reauthorizationDetails") or []]
    if len(groups) == 1:  # RFC 4006 §5.5: one service; several: the whole session
        avps.append(codec.new_avp(AVP_RATING_GROUP, groups[0]))
    return codec.request(codec.CMD_RAR, APP_GY, avps, hop_by_hop=0, end_to_end=0,
                         proxiable=True)
