"""Never a crash on bad input: any bytes framed as a message either decode or raise
``DecodeError`` (answered 5014/5015), and a decoded message is answered or dispatched by
the base protocol, and read by Gy, without any other exception."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nf.diameter import base, codec
from nf.diameter.base import APP_GY, AnswerCache, Connection
from nf.diameter.gy import parse_ccr
from tests.diameter.client import REALM, ccr, mscc
from tests.diameter.test_gy_translate import _Ids

ME = base.Identity("nf.mvno.test", "mvno.test", "127.0.0.1", "mvno-nf")
ALLOWED = base.allowed_from({"northwind": ([REALM], ["pgw1.northwind.test"])})
GOOD = codec.encode(ccr(_Ids(), "pgw1.northwind.test;1;1", 2, 1,
                        units=[mscc(10, rsu=1000, used=500, reasons=[3])], sgsn_plmn="00101",
                        uli=bytes([130, 0, 0xF1, 0x10]) + bytes(9)))
CER = codec.encode(codec.request(codec.CMD_CER, 0, [
    codec.new_avp(codec.AVP_ORIGIN_HOST, b"pgw1.northwind.test"),
    codec.new_avp(codec.AVP_ORIGIN_REALM, REALM.encode()),
    codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY)], hop_by_hop=1, end_to_end=1))


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    b = bytearray(data)
    for at, value in edits:
        b[codec.HEADER_BYTES + at % (len(b) - codec.HEADER_BYTES)] = value
    b = b[:max(codec.HEADER_BYTES, len(b) - cut)]
    b[1:4] = len(b).to_bytes(3, "big")  # framed as the transport frames it
    return bytes(b)


def _decoded(data: bytes) -> codec.Message | None:
    """The message, or None when it cannot be decoded (answered 5014/5004)."""
    try:
        return codec.decode(data)
    except codec.DecodeError as e:
        if e.result_code not in (codec.INVALID_AVP_LENGTH, codec.INVALID_AVP_VALUE):
            raise
        return None


def _exercise(data: bytes) -> None:
    msg = _decoded(data)
    if msg is None:
        return
    conn = Connection(ME, ALLOWED, AnswerCache(10), watchdog_s=30, now=0, first_id=1)
    conn.received(codec.decode(CER), 0.0)
    step = conn.received(msg, 1.0)
    for out in step.send:
        codec.decode(codec.encode(out))  # whatever is sent is well-formed
    if step.dispatch is not None:
        with contextlib.suppress(codec.DecodeError):
            parse_ccr(step.dispatch)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
       st.integers(0, 40))
def test_mutated_ccr_never_crashes(edits: list[tuple[int, int]], cut: int) -> None:
    _exercise(_mutate(GOOD, edits, cut))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
       st.integers(0, 16))
def test_mutated_cer_never_crashes(edits: list[tuple[int, int]], cut: int) -> None:
    msg = _decoded(_mutate(CER, edits, cut))
    if msg is None:
        return
    conn = Connection(ME, ALLOWED, AnswerCache(10), watchdog_s=30, now=0, first_id=1)
    for out in conn.received(msg, 0.0).send:
        codec.decode(codec.encode(out))


def test_values_of_the_wrong_size_are_answered_not_raised() -> None:
    """An Auth-Application-Id of 3 bytes in a CER, a Reporting-Reason or Event-Timestamp of
    3 bytes in a CCR: 5014 with the AVP, not an exception out of the core."""
    cer = codec.decode(codec.encode(codec.request(codec.CMD_CER, 0, [
        codec.new_avp(codec.AVP_ORIGIN_HOST, b"pgw1.northwind.test"),
        codec.new_avp(codec.AVP_ORIGIN_REALM, REALM.encode()),
        codec.raw_avp(codec.AVP_AUTH_APPLICATION_ID, b"abc")], hop_by_hop=1, end_to_end=1)))
    conn = Connection(ME, ALLOWED, AnswerCache(10), watchdog_s=30, now=0, first_id=1)
    step = conn.received(cer, 0.0)
    assert codec.result_code(step.send[0]) == codec.INVALID_AVP_LENGTH and step.close
    for bad in ([codec.new_avp(456, [codec.raw_avp(872, b"abc", codec.VENDOR_3GPP)])],
                [codec.raw_avp(55, b"abc")]):
        m = codec.decode(codec.encode(ccr(_Ids(), "s;1", 2, 1, extra=bad)))
        with pytest.raises(codec.DecodeError) as e:
            parse_ccr(m)
        assert e.value.result_code == codec.INVALID_AVP_LENGTH and e.value.failed is not None
