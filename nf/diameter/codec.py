"""The Diameter message codec: a thin typed wrapper around PyPI ``python-diameter``.

Its one job is bytes <-> messages and the few things every handler needs around them:
reading AVPs, building AVPs from the library's dictionary, building answers the RFC 6733
way (Hop-by-Hop and End-to-End ids copied, Session-Id first, Proxy-Info echoed in order,
Failed-AVP). It never hand-encodes an AVP or a header: the library does. It knows nothing
of peers, applications or money.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from diameter.message import Message as _LibMessage
from diameter.message import MessageHeader as _LibHeader
from diameter.message.avp import Avp as _LibAvp
from diameter.message.avp.avp import get_avp_dictionary_entry

from nf.diameter import framing
from nf.diameter.framing import HEADER_BYTES as HEADER_BYTES
from nf.diameter.framing import Header as Header
from nf.diameter.framing import read_header as read_header

# The library ships no type information: its classes are ``Any`` to mypy. These aliases
# name what a value is meant to be.
Message = Any
Avp = Any

VENDOR_3GPP = 10415
APP_BASE = 0
APP_RELAY = 0xFFFFFFFF

# Command codes.
CMD_CER = 257
CMD_RAR = 258
CMD_ASR = 274
CMD_STR = 275
CMD_DWR = 280
CMD_DPR = 282
CMD_CCR = 272

# Base AVP codes (RFC 6733, RFC 4006).
AVP_HOST_IP_ADDRESS = 257
AVP_AUTH_APPLICATION_ID = 258
AVP_ACCT_APPLICATION_ID = 259
AVP_VENDOR_SPECIFIC_APPLICATION_ID = 260
AVP_SESSION_ID = 263
AVP_ORIGIN_HOST = 264
AVP_SUPPORTED_VENDOR_ID = 265
AVP_VENDOR_ID = 266
AVP_RESULT_CODE = 268
AVP_PRODUCT_NAME = 269
AVP_DISCONNECT_CAUSE = 273
AVP_ORIGIN_STATE_ID = 278
AVP_FAILED_AVP = 279
AVP_PROXY_INFO = 284
AVP_ERROR_MESSAGE = 281
AVP_ORIGIN_REALM = 296
AVP_EXPERIMENTAL_RESULT = 297
AVP_EXPERIMENTAL_RESULT_CODE = 298
AVP_DESTINATION_REALM = 283
AVP_ROUTE_RECORD = 282

# Result codes (RFC 6733 §7.1, RFC 4006 §9).
SUCCESS = 2001
LIMITED_SUCCESS = 2002
COMMAND_UNSUPPORTED = 3001
UNABLE_TO_DELIVER = 3002
REALM_NOT_SERVED = 3003
TOO_BUSY = 3004
LOOP_DETECTED = 3005
APPLICATION_UNSUPPORTED = 3007
INVALID_HDR_BITS = 3008
INVALID_AVP_BITS = 3009
UNKNOWN_PEER = 3010
CREDIT_LIMIT_REACHED = 4012
AVP_UNSUPPORTED = 5001
UNKNOWN_SESSION_ID = 5002
INVALID_AVP_VALUE = 5004
MISSING_AVP = 5005
NO_COMMON_APPLICATION = 5010
UNSUPPORTED_VERSION = 5011
UNABLE_TO_COMPLY = 5012
INVALID_AVP_LENGTH = 5014
INVALID_MESSAGE_LENGTH = 5015
USER_UNKNOWN = 5030

FLAG_REQUEST = 0x80
FLAG_PROXIABLE = 0x40
FLAG_ERROR = 0x20
FLAG_RETRANSMIT = 0x10
FLAGS_RESERVED = 0x0F
AVP_FLAG_MANDATORY = 0x40


class DecodeError(Exception):
    """A message whose body cannot be decoded: the Result-Code to answer with and, where
    one can be named, the AVP to quote in Failed-AVP."""

    def __init__(self, result_code: int, reason: str, failed: Avp | None = None) -> None:
        super().__init__(reason)
        self.result_code = result_code
        self.failed = failed


def header_of(msg: Message) -> Header:
    h = msg.header  # (the library keeps every field an int)
    return Header(h.version, h.length, h.command_flags, h.command_code, h.application_id,
                  h.hop_by_hop_identifier, h.end_to_end_identifier)


def decode(data: bytes) -> Message:
    """A whole message (header included, exactly its length) as a library message.

    Raises ``DecodeError`` with 5014 (an AVP's length runs past the message or below its
    header) naming the AVP where the walk stopped."""
    hdr = _LibHeader.from_bytes(data[:HEADER_BYTES])
    try:
        got = framing.avps_in(data, HEADER_BYTES, len(data), True)
    except framing.BadLength as e:
        raise DecodeError(INVALID_AVP_LENGTH, str(e), framing.stub(data, e.at)) from None
    if got.inner_error is not None:
        raise DecodeError(INVALID_AVP_LENGTH, got.inner_error[1], got.inner_error[0])
    hdr.length_header = HEADER_BYTES
    msg = _LibMessage(hdr, got.avps)
    msg._nf_unknown_m = (got.avps, len(got.avps), got.unknown_m)
    return msg


def encode(msg: Message) -> bytes:
    out: bytes = msg.as_bytes()
    return out


def encode_avp(avp: Avp) -> bytes:
    out: bytes = avp.as_bytes()
    return out


def new_avp(code: int, value: Any, vendor: int = 0, mandatory: bool | None = None) -> Avp:
    """An AVP of the library's dictionary type for (code, vendor), its M bit as the
    dictionary says unless told.

    An answer's AVPs mostly repeat (Origin-Host, Auth-Application-Id, Result-Code, the
    grant, its Validity-Time): one with a plain value is encoded by the library once and
    later ones are fresh copies of it (its type, flags and payload bytes)."""
    kind = _PLAIN.get(type(value))
    if kind is not None:
        made = _made(code, vendor, kind, value, mandatory)
        a = made.__class__(code, vendor, made.payload, made.flags)
        a.name = made.name
        return a
    return _LibAvp.new(code, vendor, value=value, is_mandatory=mandatory)


_PLAIN = {int: "int", str: "str", bytes: "bytes"}


@functools.lru_cache(maxsize=4096)
def _made(code: int, vendor: int, kind: str, value: Any, mandatory: bool | None) -> Avp:
    """The AVP ``new_avp`` copies (``kind``: so that 1 and True, equal keys, stay apart);
    never handed out itself. Bounded: the least used is made again when asked."""
    return _LibAvp.new(code, vendor, value=value, is_mandatory=mandatory)


def raw_avp(code: int, payload: bytes, vendor: int = 0, mandatory: bool = True) -> Avp:
    """An AVP outside the dictionary (tests: an unknown AVP)."""
    a = _LibAvp(code, vendor, payload)
    a.is_mandatory = mandatory
    return a


def _members(where: Message | Avp) -> list[Avp]:
    if isinstance(where, _LibMessage):
        avps: list[Avp] = where.avps
        return avps
    v = where.value
    return v if isinstance(v, list) else []


def avps_of(where: Message | Avp) -> list[Avp]:
    """The AVPs of a message, or the members of a grouped AVP."""
    return list(_members(where))


def index(where: Message | Avp) -> dict[tuple[int, int], list[Avp]]:
    """The AVPs of a message (or the members of a grouped AVP) by (code, vendor), those of
    one key in the order they came. Built on first use and kept on ``where`` for as long
    as its list of AVPs is the same list of the same length (a handler reads a message
    many times and never edits it; a list replaced or grown is indexed again)."""
    return _index_of(where, _members(where))


def _index_of(where: Message | Avp, members: list[Avp]
              ) -> dict[tuple[int, int], list[Avp]]:
    kept = getattr(where, "_nf_index", None)
    if kept is not None and kept[0] is members and kept[1] == len(members):
        by: dict[tuple[int, int], list[Avp]] = kept[2]
        return by
    by = {}
    for a in members:
        key = (a.code, a.vendor_id)
        same = by.get(key)
        if same is None:
            by[key] = [a]
        else:
            same.append(a)
    where._nf_index = (members, len(members), by)
    return by


# Fewer AVPs than this (the members of most grouped AVPs) are scanned, not indexed: the
# scan costs less than the index it would build.
_SCAN_BELOW = 8


def find_all(where: Message | Avp, code: int, vendor: int = 0) -> list[Avp]:
    members = _members(where)
    if len(members) < _SCAN_BELOW:
        return [a for a in members if a.code == code and a.vendor_id == vendor]
    return list(_index_of(where, members).get((code, vendor), ()))


def find(where: Message | Avp, code: int, vendor: int = 0) -> Avp | None:
    members = _members(where)
    if len(members) < _SCAN_BELOW:
        for a in members:
            if a.code == code and a.vendor_id == vendor:
                return a
        return None
    same = _index_of(where, members).get((code, vendor))
    return None if same is None else same[0]


def _decoded(a: Avp, code: int, rc: int, what: str) -> Any:
    """The AVP's value as the codec decodes it; a value it cannot decode is ``rc`` with
    the AVP as Failed-AVP."""
    try:
        return a.value
    except Exception:
        raise DecodeError(rc, f"AVP {code} is not {what}", a) from None


def int_value(a: Avp) -> int:
    """The integer value of an AVP; ``DecodeError`` (5014 / 5004) if it holds none."""
    v = _decoded(a, a.code, INVALID_AVP_LENGTH, "an integer")
    if not isinstance(v, int):
        raise DecodeError(INVALID_AVP_VALUE, f"AVP {a.code} is not an integer", a)
    return v


def get_int(where: Message | Avp, code: int, vendor: int = 0) -> int | None:
    a = find(where, code, vendor)
    return None if a is None else int_value(a)


def get_str(where: Message | Avp, code: int, vendor: int = 0) -> str | None:
    a = find(where, code, vendor)
    if a is None:
        return None
    v = _decoded(a, code, INVALID_AVP_VALUE, "valid text")
    if isinstance(v, bytes):
        try:
            return v.decode()
        except UnicodeDecodeError:
            raise DecodeError(INVALID_AVP_VALUE, f"AVP {code} is not UTF-8", a) from None
    return str(v)


def get_bytes(where: Message | Avp, code: int, vendor: int = 0) -> bytes | None:
    a = find(where, code, vendor)
    return None if a is None else bytes(a.payload)


def get_time(where: Message | Avp, code: int, vendor: int = 0) -> datetime | None:
    a = find(where, code, vendor)
    if a is None:
        return None
    v = _decoded(a, code, INVALID_AVP_LENGTH, "a time")
    return v if isinstance(v, datetime) else None


def unknown_mandatory_in(msg: Message) -> Avp | None:
    """``unknown_mandatory`` of a message's AVPs: as ``decode`` found it while reading the
    message (its AVPs not changed since), else searched now."""
    kept = getattr(msg, "_nf_unknown_m", None)
    avps = msg.avps
    if kept is not None and kept[0] is avps and kept[1] == len(avps):
        found: Avp | None = kept[2]
        return found
    return unknown_mandatory(avps)


def unknown_mandatory(avps: Iterable[Avp]) -> Avp | None:
    """The first AVP with the M bit set that the dictionary does not know (RFC 6733
    §7.1.5: answered 5001 with it in Failed-AVP), searching inside grouped AVPs too."""
    for a in avps:
        entry = get_avp_dictionary_entry(a.code, a.vendor_id)
        if entry is None:
            if a.flags & AVP_FLAG_MANDATORY:
                return a
            continue
        if entry["type"].__name__ == "AvpGrouped":
            inner = unknown_mandatory(a.value)
            if inner is not None:
                return inner
    return None


def request(command: int, app_id: int, avps: Sequence[Avp], *, hop_by_hop: int,
            end_to_end: int, proxiable: bool = True, retransmit: bool = False) -> Message:
    flags = FLAG_REQUEST | (FLAG_PROXIABLE if proxiable else 0) | \
        (FLAG_RETRANSMIT if retransmit else 0)
    hdr = _LibHeader(1, 0, flags, command, app_id, hop_by_hop, end_to_end)
    return _LibMessage(hdr, list(avps))


def answer(req: Message, result_code: int | None, origin_host: str, origin_realm: str, *,
           avps: Sequence[Avp] = (), failed: Sequence[Avp] = (),
           error_message: str | None = None, experimental: tuple[int, int] | None = None
           ) -> Message:
    """The answer to ``req``: same command, application and ids, R and T clear, P as the
    request's; E set for a protocol error (3xxx). AVPs in the order RFC 6733 asks:
    Session-Id first, then Result-Code (or Experimental-Result), Origin-Host/Realm, the
    caller's AVPs, Error-Message, Failed-AVP, and the request's Proxy-Info echoed."""
    h = header_of(req)
    flags = h.flags & FLAG_PROXIABLE
    if result_code is not None and 3000 <= result_code < 4000:
        flags |= FLAG_ERROR
    hdr = _LibHeader(1, 0, flags, h.command, h.app_id, h.hop_by_hop, h.end_to_end)
    out: list[Avp] = []
    sid = find(req, AVP_SESSION_ID)
    if sid is not None:  # (one per session: not worth a place among new_avp's copies)
        out.append(_LibAvp.new(AVP_SESSION_ID, value=sid.payload.decode("utf-8", "replace")))
    if result_code is not None:
        out.append(new_avp(AVP_RESULT_CODE, result_code))
    if experimental is not None:
        out.append(new_avp(AVP_EXPERIMENTAL_RESULT, [
            new_avp(AVP_VENDOR_ID, experimental[0]),
            new_avp(AVP_EXPERIMENTAL_RESULT_CODE, experimental[1])]))
    out += [new_avp(AVP_ORIGIN_HOST, origin_host.encode()),
            new_avp(AVP_ORIGIN_REALM, origin_realm.encode())]
    out += list(avps)
    if error_message:
        out.append(new_avp(AVP_ERROR_MESSAGE, error_message))
    if failed:
        out.append(new_avp(AVP_FAILED_AVP, list(failed)))
    out += [_LibAvp.from_avp(p) for p in find_all(req, AVP_PROXY_INFO)]
    return _LibMessage(hdr, out)


def protocol_error(hdr: Header, result_code: int | None, origin_host: str, origin_realm: str,
                   error_message: str | None = None) -> Message:
    """An answer built from a header alone (the body could not be read): E set."""
    fake = _LibMessage(_LibHeader(1, 0, hdr.flags, hdr.command, hdr.app_id, hdr.hop_by_hop,
                                  hdr.end_to_end), [])
    return answer(fake, result_code, origin_host, origin_realm, error_message=error_message)


def result_code(msg: Message) -> int | None:
    """Result-Code, or the Experimental-Result-Code inside Experimental-Result. (Read
    once per answer sent, near the front of it: a scan, not an index.)"""
    for a in _members(msg):
        if a.vendor_id == 0:
            if a.code == AVP_RESULT_CODE:
                return int_value(a)
            if a.code == AVP_EXPERIMENTAL_RESULT:
                return get_int(a, AVP_EXPERIMENTAL_RESULT_CODE)
    return None


def with_hop_by_hop_bytes(data: bytes, hop_by_hop: int) -> bytes:
    """An encoded message with another Hop-by-Hop id (header bytes 12-15)."""
    return data[:12] + (hop_by_hop & 0xFFFFFFFF).to_bytes(4, "big") + data[16:]


def with_hop_by_hop(msg: Message, hop_by_hop: int) -> Message:
    """A copy of ``msg`` (an answer) for a request that came with another Hop-by-Hop id
    (a retransmission over another connection)."""
    copy = decode(encode(msg))
    copy.header.hop_by_hop_identifier = hop_by_hop
    return copy
