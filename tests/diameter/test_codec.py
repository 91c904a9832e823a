"""The codec's own reading of a message: ``decode`` makes the same AVPs as the library's
reader, the AVP lookups by (code, vendor) agree with a scan of the AVPs in order, the
unknown mandatory AVP is found while decoding, and bad lengths are named as before."""

from __future__ import annotations

from typing import Any

import pytest
from diameter.message import Message as LibMessage
from diameter.message.avp import AvpGrouped
from diameter.message.avp.errors import AvpEncodeError

from nf.diameter import codec
from nf.diameter.base import APP_GY

V = codec.VENDOR_3GPP


def _ccr(*extra: codec.Avp, mscc_extra: tuple[codec.Avp, ...] = ()) -> codec.Message:
    """A CCR with repeated, vendor-specific, nested grouped and odd-length AVPs."""
    mscc = codec.new_avp(456, [
        codec.new_avp(437, [codec.new_avp(421, 1_048_576)]),
        codec.new_avp(446, [codec.new_avp(421, 1000), codec.new_avp(412, 250),
                            codec.new_avp(872, 0, V), codec.new_avp(872, 3, V)]),
        codec.new_avp(432, 10), *mscc_extra])
    avps = [codec.new_avp(codec.AVP_SESSION_ID, "pgw1;1;odd"),  # 10 bytes: padded
            codec.new_avp(codec.AVP_ORIGIN_HOST, b"pgw1.test"),
            codec.new_avp(codec.AVP_ORIGIN_REALM, b"epc.test"),
            codec.new_avp(codec.AVP_DESTINATION_REALM, b"mvno.test"),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
            codec.new_avp(416, 2), codec.new_avp(415, 7),
            codec.new_avp(443, [codec.new_avp(450, 1), codec.new_avp(444, "001010000000001")]),
            codec.new_avp(443, [codec.new_avp(450, 0), codec.new_avp(444, "15550000001")]),
            mscc,
            codec.new_avp(456, [codec.new_avp(432, 20)]),
            codec.raw_avp(9999, b"abc", mandatory=False),
            codec.new_avp(873, [codec.new_avp(874, [codec.new_avp(18, "00101", V)], V)], V),
            *extra]
    return codec.request(codec.CMD_CCR, APP_GY, avps, hop_by_hop=1, end_to_end=2)


def _tree(avps: list[Any]) -> list[Any]:
    return [(type(a).__name__, a.name, a.code, a.vendor_id, a.flags, bytes(a.payload),
             _tree(a.value) if isinstance(a, AvpGrouped) else None) for a in avps]


def test_decode_makes_the_avps_the_library_reads() -> None:
    data = codec.encode(_ccr())
    ours = codec.decode(data)
    theirs = LibMessage.from_bytes(data, plain_msg=True)
    assert _tree(ours.avps) == _tree(theirs.avps)
    assert codec.encode(ours) == data
    assert codec.header_of(ours) == codec.read_header(data)


def _scan(where: Any, code: int, vendor: int) -> list[Any]:
    return [a for a in codec.avps_of(where) if a.code == code and a.vendor_id == vendor]


def test_lookups_agree_with_a_scan_in_order() -> None:
    msg = codec.decode(codec.encode(_ccr(*[codec.new_avp(codec.AVP_ROUTE_RECORD,
                                                         f"r{i}".encode())
                                           for i in range(9)])))
    places: list[Any] = [msg]
    for a in msg.avps:
        if isinstance(a, AvpGrouped):
            places += [a, *(m for m in a.value if isinstance(m, AvpGrouped))]
    keys = {(a.code, a.vendor_id) for p in places for a in codec.avps_of(p)}
    keys |= {(18, 0), (872, 0), (999, V)}  # absent, or present under the other vendor
    for where in places:
        for code, vendor in keys:
            want = _scan(where, code, vendor)
            assert codec.find_all(where, code, vendor) == want
            assert codec.find(where, code, vendor) is (want[0] if want else None)
    assert [codec.get_int(s, 450) for s in codec.find_all(msg, 443)] == [1, 0]
    assert [a.payload for a in codec.find_all(msg, codec.AVP_ROUTE_RECORD)] == \
        [f"r{i}".encode() for i in range(9)]
    usu = codec.find(codec.find(msg, 456), 446)
    assert [codec.int_value(a) for a in codec.find_all(usu, 872, V)] == [0, 3]
    ps = codec.find(codec.find(msg, 873, V), 874, V)
    assert codec.get_str(ps, 18, V) == "00101" and codec.get_str(ps, 18) is None


def test_lookups_follow_a_changed_list_of_avps() -> None:
    msg = codec.decode(codec.encode(_ccr()))
    assert codec.get_int(msg, 415) == 7
    msg.avps = [a for a in msg.avps if a.code != 415]
    assert codec.find(msg, 415) is None
    msg.avps.append(codec.new_avp(415, 8))
    assert codec.get_int(msg, 415) == 8
    found = codec.find_all(msg, 443)
    found.clear()  # a caller's list, not the index's
    assert len(codec.find_all(msg, 443)) == 2


def test_unknown_mandatory_avp_found_while_decoding_inside_a_group() -> None:
    unknown = codec.raw_avp(4242, b"xyzw", vendor=V, mandatory=True)
    msg = codec.decode(codec.encode(_ccr(mscc_extra=(unknown,))))
    found = codec.unknown_mandatory_in(msg)
    assert found is not None and (found.code, found.vendor_id) == (4242, V)
    assert found is codec.unknown_mandatory(msg.avps)
    assert codec.unknown_mandatory_in(codec.decode(codec.encode(_ccr()))) is None
    msg.avps = [a for a in msg.avps if a.code != 456]
    assert codec.unknown_mandatory_in(msg) is None


def _bad_member(data: bytes, group_code: int) -> bytes:
    """``data`` with the first member of the first ``group_code`` AVP claiming 4 bytes
    more than its group holds."""
    at = codec.HEADER_BYTES
    while int.from_bytes(data[at:at + 4], "big") != group_code:
        at += (int.from_bytes(data[at + 5:at + 8], "big") + 3) & ~3
    inner = at + (12 if data[at + 4] & 0x80 else 8)
    length = int.from_bytes(data[at + 5:at + 8], "big")
    return data[:inner + 5] + (length + 4).to_bytes(3, "big") + data[inner + 8:]


def test_bad_lengths_name_the_avp_as_before() -> None:
    data = codec.encode(_ccr())
    with pytest.raises(codec.DecodeError) as e:
        codec.decode(_bad_member(data, 443))
    assert e.value.result_code == codec.INVALID_AVP_LENGTH
    assert e.value.failed is not None and e.value.failed.code == 443  # the group
    last = codec.new_avp(codec.AVP_ROUTE_RECORD, b"rr")
    tail = codec.encode_avp(last)
    broken = _bad_member(data, 443) + tail[:5] + (64).to_bytes(3, "big") + tail[8:]
    broken = broken[:2] + len(broken).to_bytes(2, "big") + broken[4:]
    with pytest.raises(codec.DecodeError) as e:  # a bad top-level AVP is named first
        codec.decode(broken)
    assert e.value.failed is not None and e.value.failed.code == codec.AVP_ROUTE_RECORD
    unpadded = data + tail[:-2]  # the last AVP without its padding
    unpadded = unpadded[:2] + len(unpadded).to_bytes(2, "big") + unpadded[4:]
    with pytest.raises(codec.DecodeError) as e:
        codec.decode(unpadded)
    assert e.value.result_code == codec.INVALID_AVP_LENGTH


def test_hop_by_hop_replaced_in_the_bytes() -> None:
    data = codec.encode(_ccr())
    again = codec.decode(codec.with_hop_by_hop_bytes(data, 0xDEADBEEF))
    assert codec.header_of(again).hop_by_hop == 0xDEADBEEF
    assert codec.encode(again)[16:] == data[16:] and codec.encode(again)[:12] == data[:12]


def test_new_avp_copies_are_fresh_and_equal_to_the_librarys() -> None:
    from diameter.message.avp import Avp as LibAvp

    cases: list[tuple[int, Any, int, bool | None]] = [
        (codec.AVP_ORIGIN_HOST, b"nf.test", 0, None), (415, 7, 0, None),
        (codec.AVP_SESSION_ID, "s;1", 0, None), (869, 209_715, V, None),
        (432, 10, 0, False), (codec.AVP_RESULT_CODE, 2001, 0, True)]
    for code, value, vendor, mandatory in cases:
        want = LibAvp.new(code, vendor, value=value, is_mandatory=mandatory)
        first = codec.new_avp(code, value, vendor, mandatory)
        first.is_mandatory = not first.is_mandatory  # a caller's change stays its own
        again = codec.new_avp(code, value, vendor, mandatory)
        assert again is not first
        assert (type(again), again.name, again.flags, again.payload, again.value) == \
            (type(want), want.name, want.flags, want.payload, want.value)
        assert codec.encode_avp(again) == codec.encode_avp(want)
    for _ in range(2):  # a value the type cannot hold is refused every time
        with pytest.raises(AvpEncodeError, match="seven"):
            codec.new_avp(415, "seven")
