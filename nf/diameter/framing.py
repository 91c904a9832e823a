"""Reading the AVPs of a Diameter message off its bytes in one pass (``nf.diameter.codec``
calls it for ``decode``).

Its one job is the framing: the fixed header (read before the rest of a message
arrives), then each AVP's header (code, flags, length, vendor) is read to
find where it ends, its length checked against its container, and the AVP made by the
library's own type for its code and vendor from its payload bytes (what the library's
``Avp.from_unpacker`` does, through a slower reader). Values are never encoded or decoded
here: the library's types do that when a value is read.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from diameter.message import MessageHeader as _LibHeader
from diameter.message.avp import Avp as _LibAvp
from diameter.message.avp import AvpGrouped as _Grouped
from diameter.message.avp.avp import get_avp_dictionary_entry

Avp = Any
AVP_FLAG_MANDATORY = 0x40
HEADER_BYTES = 20


class Header(NamedTuple):
    """The fixed 20-byte header, read before the rest of a message arrives (framing)."""

    version: int
    length: int
    flags: int
    command: int
    app_id: int
    hop_by_hop: int
    end_to_end: int

    @property
    def is_request(self) -> bool:
        return bool(self.flags & 0x80)  # the R bit


def read_header(data: bytes) -> Header:
    """The header of ``data`` (at least ``HEADER_BYTES`` long)."""
    h = _LibHeader.from_bytes(data[:HEADER_BYTES])
    return Header(int(h.version), int(h.length), int(h.command_flags), int(h.command_code),
                  int(h.application_id), int(h.hop_by_hop_identifier),
                  int(h.end_to_end_identifier))


def stub(data: bytes, at: int) -> Avp | None:
    """An AVP with the code, flags and vendor found at ``at`` and no value (for Failed-AVP
    when the AVP itself cannot be decoded)."""
    if len(data) - at < 8:
        return None
    code = int.from_bytes(data[at:at + 4], "big")
    flags = data[at + 4]
    vendor = int.from_bytes(data[at + 8:at + 12], "big") if flags & 0x80 and \
        len(data) - at >= 12 else 0
    return _LibAvp(code, vendor, b"", flags & ~0x20)


class BadLength(Exception):
    """An AVP whose length runs past its container or below its header, at ``at``."""

    def __init__(self, at: int, reason: str) -> None:
        super().__init__(reason)
        self.at = at


class Decoded(NamedTuple):
    avps: list[Avp]
    unknown_m: Avp | None  # the first unknown AVP with the M bit, members included
    inner_error: tuple[Avp, str] | None  # a grouped AVP whose members cannot be read


_AVP_HEAD = struct.Struct(">II")  # code; flags and length (an AVP's first 8 bytes)


def avps_in(data: bytes, start: int, end: int, top: bool) -> Decoded:
    """The AVPs in ``data[start:end]``, each made by the library's own type for its code
    and vendor (``Avp.from_unpacker`` does the same, through a slower reader). The members
    of a grouped AVP are made at once and kept where the library keeps them once read, so
    the framing of the whole message is checked here and no handler meets a bad length.

    Raises ``BadLength`` for an AVP of this level; a bad member of a top-level grouped
    AVP is returned (``inner_error``) so that a bad top-level AVP after it is still the
    one reported, as when the top level was read first."""
    avps: list[Avp] = []
    unknown_m: Avp | None = None
    inner_error: tuple[Avp, str] | None = None
    at = start
    while at < end:
        if end - at < 8:
            raise BadLength(at, f"AVP at byte {at} is shorter than its header")
        code, flags_length = _AVP_HEAD.unpack_from(data, at)
        flags = flags_length >> 24
        length = flags_length & 0xFFFFFF
        head = 12 if flags & 0x80 else 8
        if length < head or at + length > end:
            raise BadLength(at, f"AVP at byte {at} has a bad length")
        nxt = at + ((length + 3) & ~3)
        if nxt > end:  # the padding is missing
            raise BadLength(at, f"AVP at byte {at} is not padded")
        vendor = _AVP_HEAD.unpack_from(data, at + 4)[1] if head == 12 else 0
        payload = data[at + head:at + length]
        entry = get_avp_dictionary_entry(code, vendor)
        if entry is None:
            a = _LibAvp(code, vendor, payload, flags)
            if flags & AVP_FLAG_MANDATORY and unknown_m is None:
                unknown_m = a
        else:
            a = entry["type"](code, vendor, payload, flags)
            a.name = entry["name"]
            if entry["type"] is _Grouped:
                try:
                    inner = avps_in(data, at + head, at + length, False)
                except (BadLength, RecursionError) as e:
                    if not top:
                        raise
                    if inner_error is None:
                        inner_error = (_LibAvp(code, vendor, b"", a.flags),
                                       f"grouped AVP {code}: {e}")
                else:
                    a._avps = inner.avps  # where AvpGrouped.value keeps what it read
                    if unknown_m is None:
                        unknown_m = inner.unknown_m
        avps.append(a)
        at = nxt
    return Decoded(avps, unknown_m, inner_error)
