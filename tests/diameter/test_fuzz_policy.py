"""Never a crash on bad input, Gx and Sy: a mutated CCR or SLR either fails to decode
(5014/5004) or is read by the Gx and Sy translations with nothing but ``DecodeError``
(answered with its Result-Code and Failed-AVP)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nf.diameter import codec, gx, sy, umi
from nf.diameter.base import APP_GX, APP_SY
from nf.diameter.codec import VENDOR_3GPP as V
from tests.diameter.pcef import subscription
from tests.diameter.test_fuzz import _decoded, _mutate

_HEAD = [codec.new_avp(codec.AVP_SESSION_ID, "pgw1.northwind.test;1;1"),
         codec.new_avp(codec.AVP_ORIGIN_HOST, b"pgw1.northwind.test"),
         codec.new_avp(codec.AVP_ORIGIN_REALM, b"epc.northwind.test"),
         codec.new_avp(codec.AVP_DESTINATION_REALM, b"mvno.test"),
         codec.new_avp(codec.AVP_ORIGIN_STATE_ID, 7)]
CCR = codec.encode(codec.request(codec.CMD_CCR, APP_GX, [
    *_HEAD, codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GX),
    codec.new_avp(gx.AVP_CC_REQUEST_TYPE, gx.UPDATE),
    codec.new_avp(gx.AVP_CC_REQUEST_NUMBER, 1), subscription("001010000000001"),
    codec.new_avp(gx.AVP_SGSN_MCC_MNC, "00101", V),
    codec.new_avp(gx.AVP_EVENT_TRIGGER, umi.USAGE_REPORT, V),
    codec.new_avp(gx.AVP_QOS_INFORMATION, [codec.new_avp(gx.AVP_APN_AMBR_UL, 1000, V),
                                           codec.new_avp(gx.AVP_APN_AMBR_DL, 2000, V)], V),
    codec.new_avp(umi.AVP_USAGE_MONITORING_INFORMATION, [
        codec.new_avp(umi.AVP_MONITORING_KEY, umi.MONITORING_KEY, V, mandatory=False),
        codec.new_avp(umi.AVP_USED_SERVICE_UNIT, [
            codec.new_avp(umi.AVP_CC_TOTAL_OCTETS, 1000)])], V, mandatory=False)],
    hop_by_hop=1, end_to_end=1))
SLR = codec.encode(codec.request(sy.CMD_SL, APP_SY, [
    *_HEAD, codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_SY),
    codec.new_avp(sy.AVP_SL_REQUEST_TYPE, sy.SL_INITIAL, V),
    subscription("001010000000001"),
    codec.new_avp(sy.AVP_POLICY_COUNTER_IDENTIFIER, "data-cap", V)],
    hop_by_hop=1, end_to_end=1))
# What a refusal may be answered with; None: read without one.
ANSWERED = (None, codec.MISSING_AVP, codec.INVALID_AVP_VALUE, codec.INVALID_AVP_LENGTH)


def _refusal(read: Callable[[], None]) -> int | None:
    """The Result-Code of the ``DecodeError`` ``read`` raised (any other exception fails
    the test)."""
    try:
        read()
    except codec.DecodeError as e:
        return e.result_code
    return None


# Byte edits anywhere in the body (offsets wrap around it).
EDITS = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4)
# Mostly whole messages: a cut end fails to decode, before any translation reads it.
CUTS = st.one_of(st.just(0), st.just(0), st.integers(1, 40))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EDITS, CUTS)
def test_mutated_gx_ccr_never_crashes(edits: list[tuple[int, int]], cut: int) -> None:
    msg = _decoded(_mutate(CCR, edits, cut))
    if msg is None:
        return
    def read() -> None:
        parsed = gx.parse_ccr(msg)
        gx.update_data(parsed)
        gx.context_data(parsed, "diameter://pgw1.northwind.test/s")
        umi.reported_octets(msg)

    assert _refusal(read) in ANSWERED


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EDITS, CUTS)
def test_mutated_sy_slr_never_crashes(edits: list[tuple[int, int]], cut: int) -> None:
    msg = _decoded(_mutate(SLR, edits, cut))
    if msg is None:
        return
    def read() -> None:
        sy.spending_limit_context(msg, "diameter://pcrf.northwind.test/s")
        codec.get_int(msg, sy.AVP_SL_REQUEST_TYPE, V)

    assert _refusal(read) in ANSWERED
