"""Gy's translations on their own: CCR → the SBI's ChargingDataRequest, the CHF's answer →
the CCA's AVPs, the serving PLMN from 3GPP-User-Location-Info, bad CCRs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from nf.chf.wire import ChargingDataRequest
from nf.diameter import codec
from nf.diameter.codec import DecodeError
from nf.diameter.gy import (
    cca_avps,
    charging_ref,
    gpsi_of,
    notify_uri,
    parse_ccr,
    plmn_of_uli,
    to_sbi,
)
from nf.diameter.gy_wire import push_request
from tests.diameter.client import Client, ccr, mscc

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class _Ids(Client):
    """The test client's message builders without a socket."""

    def __init__(self) -> None:
        self.origin_host, self.origin_realm = "pgw1.northwind.test", "realm.test"
        self._next = 0

    def ids(self) -> tuple[int, int]:
        self._next += 1
        return self._next, self._next


def _ccr(*a: object, **kw: object) -> codec.Message:
    return codec.decode(codec.encode(ccr(_Ids(), *a, **kw)))  # type: ignore[arg-type]


def test_plmn_of_user_location_info() -> None:
    assert plmn_of_uli(bytes([130, 0x99, 0xF9, 0x07]) + bytes(9)) == "99970"
    assert plmn_of_uli(bytes([129, 0x13, 0x00, 0x62]) + bytes(4)) == "310260"
    assert plmn_of_uli(bytes([130, 0x99])) is None
    assert plmn_of_uli(bytes([130, 0xAA, 0xAA, 0xAA])) is None


def test_ccr_to_charging_data_request() -> None:
    m = _ccr("s;1", 2, 7, units=[mscc(10, rsu=5000, used=2000, reasons=[0]),
                                 mscc(None, rsu=True)], sgsn_plmn="99970")
    c = parse_ccr(m)
    assert (c.session_id, c.request_type, c.request_number, c.imsi, c.msisdn,
            c.serving_plmn) == ("s;1", 2, 7, "001010000000001", "15550000001", "99970")
    req = to_sbi(c, "00101", NOW)
    assert req.subscriberIdentifier == "imsi-001010000000001"
    assert req.invocationSequenceNumber == 7 and req.consumer_plmn == "00101"
    assert req.serving_plmn == "99970"
    first, second = req.multipleUnitUsage or []
    assert first.ratingGroup == 10 and first.requestedUnit is not None
    assert first.requestedUnit.volume == 5000
    [used] = first.usedUnitContainer or []
    assert (used.total, used.uplinkVolume, used.downlinkVolume) == (2000, 500, 1500)
    assert [t.triggerType for t in used.triggers or []] == ["THRESHOLD"]
    assert second.ratingGroup == 0 and second.requestedUnit is not None
    assert second.requestedUnit.volume is None  # the network's grant size


def test_session_id_names_one_charging_ref() -> None:
    assert charging_ref("n", "a;1") == charging_ref("n", "a;1") != charging_ref("n", "a;2")
    assert charging_ref("n", "a;1") != charging_ref("m", "a;1")


@pytest.mark.parametrize(("drop", "code", "rc"), [(416, 416, codec.MISSING_AVP),
                                                  (415, 415, codec.MISSING_AVP)])
def test_missing_request_type_or_number(drop: int, code: int, rc: int) -> None:
    m = _ccr("s;1", 1, 0, units=[mscc(10)])
    m.avps = [a for a in m.avps if a.code != drop]
    with pytest.raises(DecodeError) as e:
        parse_ccr(m)
    assert e.value.result_code == rc and e.value.failed is not None
    assert e.value.failed.code == code


def test_bad_request_type_5004() -> None:
    with pytest.raises(DecodeError) as e:
        parse_ccr(_ccr("s;1", 9, 0, units=[mscc(10)]))
    assert e.value.result_code == codec.INVALID_AVP_VALUE


def _mscc(avps: list[codec.Avp]) -> list[codec.Avp]:
    return [a for a in avps if a.code == 456]


def test_answer_to_cca_units_fui_and_refusals() -> None:
    c = parse_ccr(_ccr("s;1", 2, 3, units=[mscc(10), mscc(None)]))
    body = {"invocationSequenceNumber": 3, "multipleUnitInformation": [
        {"ratingGroup": 10, "resultCode": "SUCCESS", "grantedUnit": {"totalVolume": 100},
         "validityTime": 600, "volumeQuotaThreshold": 20, "quotaHoldingTime": 30,
         "finalUnitIndication": {"finalUnitAction": "TERMINATE"}},
        {"ratingGroup": 0, "resultCode": "QUOTA_LIMIT_REACHED",
         "finalUnitIndication": {"finalUnitAction": "REDIRECT", "redirectServer": {
             "redirectAddressType": "URL", "redirectServerAddress": "https://top.up/"}}}]}
    rc, avps = cca_avps(c, body)
    assert rc == codec.SUCCESS
    assert [a.code for a in avps[:3]] == [258, 416, 415]
    granted, refused = (codec.decode(codec.encode(codec.request(
        272, 4, [m], hop_by_hop=1, end_to_end=1))).avps[0] for m in _mscc(avps))
    assert codec.get_int(granted, 432) == 10 and codec.get_int(granted, 268) == 2001
    assert codec.get_int(codec.find(granted, 431), 421) == 100
    assert codec.get_int(granted, 869, codec.VENDOR_3GPP) == 20
    assert codec.get_int(granted, 871, codec.VENDOR_3GPP) == 30
    assert codec.get_int(codec.find(granted, 430), 449) == 0
    assert codec.find(refused, 432) is None  # asked without a Rating-Group
    assert codec.get_int(refused, 268) == codec.CREDIT_LIMIT_REACHED
    fui = codec.find(refused, 430)
    assert codec.get_int(fui, 449) == 1
    assert codec.get_str(codec.find(fui, 434), 435) == "https://top.up/"
    refusal = {"invocationSequenceNumber": 0, "invocationResult": {
        "error": {"cause": "USER_UNKNOWN"}}, "multipleUnitInformation": []}
    rc, avps = cca_avps(parse_ccr(_ccr("s;2", 1, 0, units=[mscc(10)])), refusal)
    assert rc == codec.USER_UNKNOWN
    assert codec.get_int(codec.request(272, 4, avps, hop_by_hop=1, end_to_end=1), 427) == 0


def test_e164_number_to_gpsi_and_the_supi_it_gives() -> None:
    assert gpsi_of("15550000031") == gpsi_of("+15550000031") == "msisdn-15550000031"
    assert [gpsi_of(x) for x in ("", "+", "1234", "1" * 16, "1555x", "١٢٣٤٥")] == [None] * 6
    c = parse_ccr(_ccr("s;1", 1, 0, imsi=None, msisdn="15550000031", units=[mscc(10)]))
    assert (c.imsi, c.msisdn) == (None, "15550000031")
    assert to_sbi(c, "00101", NOW, "imsi-001010000000031").subscriberIdentifier == \
        "imsi-001010000000031"


def test_chf_notifications_of_a_gy_session_become_rar_or_asr() -> None:
    who = {"origin_host": "nf.mvno.test", "origin_realm": "mvno.test",
           "dest_host": "pgw1.northwind.test", "dest_realm": "epc.test"}
    rar = codec.decode(codec.encode(push_request("s;1", {
        "notificationType": "REAUTHORIZATION", "reauthorizationDetails": [{"ratingGroup": 10}]},
        **who)))
    h = codec.header_of(rar)
    assert (h.command, h.app_id, h.is_request) == (codec.CMD_RAR, 4, True)
    assert rar.avps[0].code == codec.AVP_SESSION_ID
    assert codec.get_int(rar, codec.AVP_AUTH_APPLICATION_ID) == 4
    assert (codec.get_int(rar, 285), codec.get_int(rar, 432)) == (0, 10)
    assert codec.get_str(rar, 293) == "pgw1.northwind.test"
    # Several rating groups: the whole session is re-authorised (no Rating-Group).
    both = push_request("s;1", {"notificationType": "REAUTHORIZATION",
                                "reauthorizationDetails": [{"ratingGroup": 10},
                                                           {"ratingGroup": 20}]}, **who)
    assert codec.find(both, 432) is None
    asr = push_request("s;1", {"notificationType": "ABORT_CHARGING"}, **who)
    assert codec.header_of(asr).command == codec.CMD_ASR
    with pytest.raises(ValueError, match="OTHER"):
        push_request("s;1", {"notificationType": "OTHER"}, **who)


def test_a_diameter_notify_uri_only_from_the_diameter_layer() -> None:
    c = parse_ccr(_ccr("s;1", 1, 0, units=[mscc(10)]))
    uri = notify_uri("pgw1.northwind.test", "s;1", "pgw1.northwind.test", "epc.test")
    assert uri == "diameter://pgw1.northwind.test/s%3B1/pgw1.northwind.test/epc.test/charging"
    assert to_sbi(c, "00101", NOW, notify_uri=uri).notifyUri == uri
    body = to_sbi(c, "00101", NOW).model_dump(mode="json", exclude_none=True)
    with pytest.raises(ValidationError):  # what an SMF sends over the SBI
        ChargingDataRequest.model_validate({**body, "notifyUri": uri})
    ok = ChargingDataRequest.model_validate({**body, "notifyUri": "https://smf.test/n"})
    assert ok.notifyUri == "https://smf.test/n"
