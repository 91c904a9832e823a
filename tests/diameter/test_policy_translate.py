"""Gx and Sy translations, pure: CCR → the SBI's SM policy bodies, the PCF's decisions →
QoS AVPs, SLR → ``SpendingLimitContext``, the outbox's SBI bodies → RAR / SNR, and the
usage monitoring armed from the ledger's buckets. Every
message goes through the codec's bytes and back, as on the wire."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nf.diameter import codec, gx, push, sy, umi
from nf.diameter.base import APP_GX, APP_SY
from nf.diameter.codec import VENDOR_3GPP, Avp, Message
from nf.diameter.sessions import notification_uri
from nf.ledger.port import BucketView, Speed
from nf.notify.policy import Outcome
from nf.pcf import core

SID = "pgw1.northwind.test;1;42"
V = VENDOR_3GPP


def wire(msg: Message) -> Message:
    return codec.decode(codec.encode(msg))


def ccr(rtype: int, *extra: Avp) -> Message:
    avps = [codec.new_avp(codec.AVP_SESSION_ID, SID),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GX),
            codec.new_avp(codec.AVP_ORIGIN_HOST, b"pgw1.northwind.test"),
            codec.new_avp(codec.AVP_ORIGIN_REALM, b"epc.northwind.test"),
            codec.new_avp(codec.AVP_DESTINATION_REALM, b"mvno.test"),
            codec.new_avp(gx.AVP_CC_REQUEST_TYPE, rtype),
            codec.new_avp(gx.AVP_CC_REQUEST_NUMBER, rtype - 1), *extra]
    return wire(codec.request(codec.CMD_CCR, APP_GX, avps, hop_by_hop=1, end_to_end=1))


def sub(kind: int, data: str) -> Avp:
    return codec.new_avp(gx.AVP_SUBSCRIPTION_ID, [
        codec.new_avp(gx.AVP_SUBSCRIPTION_ID_TYPE, kind),
        codec.new_avp(gx.AVP_SUBSCRIPTION_ID_DATA, data)])


def test_a_ccr_i_becomes_the_sbi_create_body() -> None:
    msg = ccr(gx.INITIAL, sub(gx.SUB_E164, "15550001"), sub(gx.SUB_IMSI, "001010000000001"),
              codec.new_avp(gx.AVP_CALLED_STATION_ID, "internet.mvno"),
              codec.new_avp(gx.AVP_SGSN_MCC_MNC, "00101", V),
              codec.new_avp(gx.AVP_FRAMED_IP_ADDRESS, b"\x0a\x00\x00\x01"),
              codec.new_avp(gx.AVP_QOS_INFORMATION, [
                  codec.new_avp(gx.AVP_APN_AMBR_UL, 50_000_000, V),
                  codec.new_avp(gx.AVP_APN_AMBR_DL, 100_000_000, V)], V),
              codec.new_avp(gx.AVP_SUPPORTED_FEATURES, [
                  codec.new_avp(codec.AVP_VENDOR_ID, V),
                  codec.new_avp(gx.AVP_FEATURE_LIST_ID, 1, V),
                  codec.new_avp(gx.AVP_FEATURE_LIST, 0x0B, V)], V))
    parsed = gx.parse_ccr(msg)
    assert (parsed.session_id, parsed.request_type, parsed.request_number) == (SID, 1, 0)
    assert parsed.features == 0x0B
    uri = notification_uri("pgw1.northwind.test", SID, "pgw1.northwind.test", "epc.test")
    assert uri == "diameter://pgw1.northwind.test/pgw1.northwind.test%3B1%3B42/" \
        "pgw1.northwind.test/epc.test"
    ctx = gx.context_data(parsed, uri)
    assert ctx.supi == "imsi-001010000000001" and ctx.gpsi == "msisdn-15550001"
    assert ctx.dnn == "internet.mvno" and ctx.pdu_session_type == "IPV4"
    assert ctx.serving_network is not None and ctx.serving_network.plmn == "00101"
    assert ctx.subs_sess_ambr is not None and ctx.subs_sess_ambr.downlink == "100000000 bps"
    assert ctx.notification_uri == uri


def test_bad_ccrs_name_the_avp() -> None:
    with pytest.raises(codec.DecodeError) as e:
        gx.context_data(gx.parse_ccr(ccr(gx.INITIAL, sub(gx.SUB_E164, "1555"))), "x")
    assert e.value.result_code == codec.MISSING_AVP
    assert e.value.failed is not None and e.value.failed.code == gx.AVP_SUBSCRIPTION_ID
    with pytest.raises(codec.DecodeError) as e:
        gx.parse_ccr(ccr(gx.INITIAL, codec.new_avp(gx.AVP_SGSN_MCC_MNC, "0010", V)))
    assert e.value.result_code == codec.INVALID_AVP_VALUE
    assert e.value.failed is not None and e.value.failed.code == gx.AVP_SGSN_MCC_MNC
    with pytest.raises(codec.DecodeError) as e:
        gx.parse_ccr(ccr(7))
    assert e.value.result_code == codec.INVALID_AVP_VALUE


def test_a_ccr_u_reports_a_plmn_change() -> None:
    upd = gx.update_data(gx.parse_ccr(ccr(
        gx.UPDATE, codec.new_avp(gx.AVP_EVENT_TRIGGER, gx.PLMN_CHANGE, V),
        codec.new_avp(gx.AVP_SGSN_MCC_MNC, "999001", V))))
    assert upd.rep_policy_ctrl_req_triggers == ["PLMN_CH"]
    assert upd.serving_network is not None and upd.serving_network.plmn == "999001"


def _decision(down_kbps: int, *, recheck: datetime | None = None) -> dict[str, object]:
    state = core.PolicyState("p1", "imsi-1", "diameter://x/y", "00101", False,
                             Speed(64, down_kbps), "throttled", 2, recheck_at=recheck)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return core.session_decision(state, core.DefaultQos(9, 8), initial=False, now=now)


def _qos(avps: list[Avp]) -> tuple[int | None, int | None]:
    msg = wire(codec.request(codec.CMD_RAR, APP_GX, avps, hop_by_hop=1, end_to_end=1))
    q = codec.find(msg, gx.AVP_QOS_INFORMATION, V)
    assert q is not None
    return codec.get_int(q, gx.AVP_APN_AMBR_UL, V), codec.get_int(q, gx.AVP_APN_AMBR_DL, V)


def test_a_decision_becomes_qos_information_in_bits_per_second() -> None:
    recheck = datetime(2026, 1, 2, tzinfo=UTC)
    avps = gx.decision_avps(_decision(128, recheck=recheck))
    assert _qos(avps) == (64_000, 128_000)
    msg = wire(codec.request(codec.CMD_RAR, APP_GX, avps, hop_by_hop=1, end_to_end=1))
    bearer = codec.find(msg, gx.AVP_DEFAULT_EPS_BEARER_QOS, V)
    assert bearer is not None and codec.get_int(bearer, gx.AVP_QCI, V) == 9
    arp = codec.find(bearer, gx.AVP_ARP, V)
    assert arp is not None and codec.get_int(arp, gx.AVP_PRIORITY_LEVEL, V) == 8
    assert codec.get_int(arp, gx.AVP_PRE_EMPTION_CAPABILITY, V) == 1  # NOT_PREEMPT
    triggers = [a.value for a in codec.find_all(msg, gx.AVP_EVENT_TRIGGER, V)]
    assert triggers == [gx.PLMN_CHANGE, gx.REVALIDATION_TIMEOUT]
    when = codec.get_time(msg, gx.AVP_REVALIDATION_TIME, V)  # naive, local time
    assert when is not None and when.timestamp() == recheck.timestamp()
    # 10 Gbit/s does not fit APN-AMBR's Unsigned32: Extended-APN-AMBR carries it (kbit/s).
    big = gx.decision_avps(_decision(10_000_000))
    msg = wire(codec.request(codec.CMD_RAR, APP_GX, big, hop_by_hop=1, end_to_end=1))
    q = codec.find(msg, gx.AVP_QOS_INFORMATION, V)
    assert q is not None and codec.get_int(q, gx.AVP_APN_AMBR_DL, V) == 0xFFFFFFFF
    assert codec.get_int(q, gx.AVP_EXTENDED_APN_AMBR_DL, V) == 10_000_000


def test_outbox_bodies_become_rar_and_snr() -> None:
    host = "pgw1.northwind.test"
    # Behind a DRA: the URI names the connected peer and the client the RAR is for.
    t = push.target(notification_uri("dra.northwind.test", SID, host, "epc.northwind.test")
                    + "/update")
    assert (t.host, t.session_id, t.what, t.app) == ("dra.northwind.test", SID, "update",
                                                     "gx")
    assert t.client == (host, "epc.northwind.test")
    # A URI of an earlier version names the peer only (the session map has the client).
    old = push.target(f"diameter://{host}/pgw1.northwind.test%3B1%3B42/update")
    assert (old.host, old.session_id, old.what, old.client) == (host, SID, "update", None)
    who = {"origin_host": "ocs.mvno.test", "origin_realm": "mvno.test",
           "dest_host": host, "dest_realm": "epc.northwind.test"}
    rar = wire(push.push_request(t, {"resourceUri": "r", "smPolicyDecision": _decision(128)},
                                 **who))
    h = codec.header_of(rar)
    assert (h.command, h.app_id, h.is_request) == (codec.CMD_RAR, APP_GX, True)
    assert rar.avps[0].code == codec.AVP_SESSION_ID and rar.avps[0].value == SID
    assert codec.get_str(rar, gx.AVP_DESTINATION_HOST) == host
    assert codec.get_str(rar, codec.AVP_DESTINATION_REALM) == "epc.northwind.test"
    assert codec.get_int(rar, gx.AVP_RE_AUTH_REQUEST_TYPE) == 0
    assert _qos(rar.avps) == (64_000, 128_000)

    end = push.target(notification_uri(host, SID, host, "epc") + "/terminate")
    rar = wire(push.push_request(end, {"resourceUri": "r", "cause": "UE_SUBSCRIPTION"}, **who))
    assert codec.get_int(rar, gx.AVP_SESSION_RELEASE_CAUSE, V) == 1
    assert codec.find(rar, gx.AVP_QOS_INFORMATION, V) is None

    note = push.target(notification_uri("pcrf.northwind.test", "pcrf;9",
                                        "pcrf.northwind.test", "northwind.test") + "/notify")
    assert note.app == "sy" and note.client == ("pcrf.northwind.test", "northwind.test")
    snr = wire(push.push_request(note, {"supi": "imsi-1", "statusInfos": {
        "data-cap": {"policyCounterId": "data-cap", "currentStatus": "exhausted"}}}, **who))
    h = codec.header_of(snr)
    assert (h.command, h.app_id) == (sy.CMD_SN, APP_SY)
    (report,) = codec.find_all(snr, sy.AVP_POLICY_COUNTER_STATUS_REPORT, V)
    assert codec.get_str(report, sy.AVP_POLICY_COUNTER_IDENTIFIER, V) == "data-cap"
    assert codec.get_str(report, sy.AVP_POLICY_COUNTER_STATUS, V) == "exhausted"
    with pytest.raises(ValueError, match="not a Diameter push URI"):
        push.target("diameter://pgw1/only-a-session")
    with pytest.raises(ValueError, match="not a Diameter push URI"):
        push.target("diameter://pgw1/s/pgw1/update")


def test_the_peers_answer_settles_the_entry() -> None:
    def answer(rc: int) -> Message:
        req = codec.request(codec.CMD_RAR, APP_GX, [codec.new_avp(codec.AVP_SESSION_ID, SID)],
                            hop_by_hop=1, end_to_end=1)
        return wire(codec.answer(req, rc, "pgw1", "epc"))

    assert push.outcome_of(answer(2001))[0] is Outcome.SENT
    assert push.outcome_of(answer(2002))[0] is Outcome.SENT
    assert push.outcome_of(answer(5002)) == (Outcome.GONE, "Result-Code 5002")
    assert push.outcome_of(answer(3004))[0] is Outcome.RETRY
    assert push.outcome_of(answer(5012))[0] is Outcome.DEAD


def test_an_slr_becomes_the_sbi_subscription() -> None:
    req = wire(codec.request(sy.CMD_SL, APP_SY, [
        codec.new_avp(codec.AVP_SESSION_ID, "pcrf;9"),
        codec.new_avp(sy.AVP_SL_REQUEST_TYPE, sy.SL_INITIAL, V),
        sub(gx.SUB_IMSI, "001010000000001"),
        codec.new_avp(sy.AVP_POLICY_COUNTER_IDENTIFIER, "data-cap", V)],
        hop_by_hop=1, end_to_end=1))
    ctx = sy.spending_limit_context(req, notification_uri(
        "pcrf.northwind.test", "pcrf;9", "pcrf.northwind.test", "northwind.test"))
    assert ctx.supi == "imsi-001010000000001" and ctx.policy_counter_ids == ["data-cap"]
    assert ctx.notif_uri == \
        "diameter://pcrf.northwind.test/pcrf%3B9/pcrf.northwind.test/northwind.test"


def _bucket(kind: str, quota: int, used: int, *, zone: tuple[str, ...] | None = None,
            valid_to: datetime | None = None) -> BucketView:
    return BucketView(f"b-{kind}-{quota}", kind, "offer", 1, quota, used, 0,
                      datetime(2026, 1, 1, tzinfo=UTC), valid_to, None, zone)


def test_usage_monitoring_grants_the_full_speed_bytes_left() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    buckets = [_bucket("plan", 100, 30), _bucket("addon", 50, 60),  # overdrawn: 0 left
               _bucket("addon", 40, 0, valid_to=datetime(2026, 1, 5, tzinfo=UTC)),  # expired
               _bucket("roaming", 500, 0, zone=("EU",)), _bucket("pool", 1000, 900)]
    assert umi.bytes_left(buckets, now) == 70 + 100
    assert umi.monitoring_avps(0) == []
    msg = wire(codec.request(codec.CMD_RAR, APP_GX, umi.monitoring_avps(170),
                             hop_by_hop=1, end_to_end=1))
    (info,) = codec.find_all(msg, umi.AVP_USAGE_MONITORING_INFORMATION, V)
    assert not info.flags & 0x40  # the M bit is clear on the monitoring AVPs
    assert codec.get_bytes(info, umi.AVP_MONITORING_KEY, V) == b"data-cap"
    gsu = codec.find(info, umi.AVP_GRANTED_SERVICE_UNIT)
    assert gsu is not None and codec.get_int(gsu, umi.AVP_CC_TOTAL_OCTETS) == 170
    assert codec.get_int(info, umi.AVP_USAGE_MONITORING_LEVEL, V) == umi.SESSION_LEVEL
    assert [a.value for a in codec.find_all(msg, gx.AVP_EVENT_TRIGGER, V)] == [33]
    # The PCEF's report of the key, in a CCR-U.
    report = ccr(gx.UPDATE, codec.new_avp(gx.AVP_EVENT_TRIGGER, umi.USAGE_REPORT, V),
                 codec.new_avp(umi.AVP_USAGE_MONITORING_INFORMATION, [
                     codec.new_avp(umi.AVP_MONITORING_KEY, b"data-cap", V, mandatory=False),
                     codec.new_avp(umi.AVP_USED_SERVICE_UNIT, [
                         codec.new_avp(umi.AVP_CC_TOTAL_OCTETS, 170)])], V, mandatory=False))
    assert umi.reported_octets(report) == 170
    assert umi.reported_octets(ccr(gx.UPDATE)) is None
