"""SMS text encoding: GSM 03.38 default alphabet (7-bit) when every character fits, else
UCS-2; long texts split into parts with a concatenation UDH (IEI 0x00, 8-bit reference).

Septets are carried unpacked, one per octet, as SMPP ``data_coding`` 0 expects. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
           "]": 0x3E, "|": 0x40, "€": 0x65}
_BASIC = {c: i for i, c in enumerate(GSM_BASIC) if c != "\x1b"}
ESC = 0x1B

DCS_GSM7 = 0x00
DCS_UCS2 = 0x08
MAX_PARTS = 10  # longer texts are a template mistake, refused at load


@dataclass(frozen=True)
class Encoded:
    dcs: int  # SMPP data_coding
    parts: tuple[bytes, ...]  # each a complete short_message (UDH included if several)

    @property
    def udh(self) -> bool:
        return len(self.parts) > 1


def gsm7_units(text: str) -> list[bytes] | None:
    """Each character as its septet(s) (escape + code for the extension table); None if a
    character is outside the GSM default alphabet."""
    out: list[bytes] = []
    for ch in text:
        code = _BASIC.get(ch)
        if code is not None:
            out.append(bytes((code,)))
            continue
        ext = GSM_EXT.get(ch)
        if ext is None:
            return None
        out.append(bytes((ESC, ext)))
    return out


def ucs2_units(text: str) -> list[bytes]:
    """UTF-16BE code units per character (a surrogate pair stays one unit: never split)."""
    return [ch.encode("utf-16-be") for ch in text]


def _pack(units: list[bytes], limit: int) -> list[bytes]:
    parts: list[bytes] = []
    cur = b""
    for u in units:
        if len(cur) + len(u) > limit:
            parts.append(cur)
            cur = b""
        cur += u
    if cur or not parts:
        parts.append(cur)
    return parts


def encode(text: str, ref: int) -> Encoded:
    """The text as SMS parts: GSM-7 if possible (160 septets, 153 per part), else UCS-2
    (140 octets, 134 per part). ``ref`` (0-255) is the concatenation reference."""
    units = gsm7_units(text)
    if units is not None:
        dcs, single, multi = DCS_GSM7, 160, 153
    else:
        units, dcs, single, multi = ucs2_units(text), DCS_UCS2, 140, 134
    whole = b"".join(units)
    if len(whole) <= single:
        return Encoded(dcs, (whole,))
    bodies = _pack(units, multi)
    n = len(bodies)
    if n > 255:
        raise ValueError("text too long for concatenated SMS")
    return Encoded(dcs, tuple(bytes((5, 0, 3, ref & 0xFF, n, i + 1)) + b
                              for i, b in enumerate(bodies)))


def part_count(text: str) -> int:
    return len(encode(text, 0).parts)


def decode_gsm7(data: bytes) -> str:
    """Unpacked septets back to text (for tests and care views)."""
    rev_ext = {v: k for k, v in GSM_EXT.items()}
    out, esc = [], False
    for b in data:
        if esc:
            out.append(rev_ext.get(b, "?"))
            esc = False
        elif b == ESC:
            esc = True
        else:
            out.append(GSM_BASIC[b] if b < len(GSM_BASIC) else "?")
    return "".join(out)
