"""Malformed messages on a connection that carries an open Gy session: each is answered
per RFC 6733 (5015 bad Message Length, 5014 bad AVP length, 5001 unknown M-bit AVP, all
with the request's ids) and the connection and the session on it go on."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from nf.config import Settings
from nf.diameter import codec
from nf.diameter.base import APP_GY
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import MIB, Client, ccr, mscc, units_of
from tests.diameter.nfdia import diameter_nf
from tests.diameter.test_e2e_gy import CONFIG, provision, used_bytes

pytestmark = pytest.mark.e2e

SID = "pgw1.northwind.test;9;900"


def _header(length: int, hbh: int, e2e: int, command: int = codec.CMD_CCR,
            app: int = APP_GY) -> bytes:
    flags = codec.FLAG_REQUEST | codec.FLAG_PROXIABLE
    return struct.pack(">IIIII", (1 << 24) | length, (flags << 24) | command, app, hbh, e2e)


def _check(ans: codec.Message, rc: int, hbh: int) -> None:
    h = codec.header_of(ans)
    assert (h.hop_by_hop, h.is_request) == (hbh, False)
    assert codec.result_code(ans) == rc, codec.result_code(ans)


def test_malformed_messages_answered_and_the_session_goes_on(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                     extra_env={"NF_CONFIG": str(CONFIG)}) as (nf, port), Client(port) as pgw:
        provision(nf.oam)
        pgw.cer()
        cca = pgw.call(ccr(pgw, SID, 1, 0, units=[mscc(10)]))
        assert units_of(cca)[0]["granted"] == MIB

        # A header whose Message Length is shorter than a header (truncated).
        pgw.send_raw(_header(12, 0x1001, 0x2001))
        _check(pgw.recv(), codec.INVALID_MESSAGE_LENGTH, 0x1001)

        # A Message Length that is no multiple of 4 (the bytes it names are sent).
        good = codec.encode(ccr(pgw, SID, 2, 1, units=[mscc(10, used=1000)],
                                ids=(0x1002, 0x2002)))
        odd = bytearray(good + b"\x00\x00")
        odd[1:4] = (len(odd)).to_bytes(3, "big")
        pgw.send_raw(bytes(odd))
        _check(pgw.recv(), codec.INVALID_MESSAGE_LENGTH, 0x1002)

        # An AVP whose length runs past the end of the message.
        bad = bytearray(codec.encode(ccr(pgw, SID, 2, 1, units=[mscc(10, used=1000)],
                                         ids=(0x1003, 0x2003))))
        mscc_bytes = codec.encode_avp(mscc(10, used=1000))
        last = len(bad) - len(mscc_bytes)  # the last AVP is the MSCC
        assert bad[last:last + 4] == (456).to_bytes(4, "big")
        bad[last + 5:last + 8] = (400).to_bytes(3, "big")
        pgw.send_raw(bytes(bad))
        ans = pgw.recv()
        _check(ans, codec.INVALID_AVP_LENGTH, 0x1003)
        failed = codec.find(ans, codec.AVP_FAILED_AVP)
        assert failed is not None and [a.code for a in failed.value] == [456]

        # An unknown AVP with the M bit set.
        ans = pgw.call(ccr(pgw, SID, 2, 1, units=[mscc(10, used=1000)],
                           extra=[codec.raw_avp(99999, b"abcd")], ids=(0x1004, 0x2004)))
        _check(ans, codec.AVP_UNSUPPORTED, 0x1004)
        assert ans.avps[0].code == codec.AVP_SESSION_ID
        failed = codec.find(ans, codec.AVP_FAILED_AVP)
        assert failed is not None and [a.code for a in failed.value] == [99999]
        # A Destination-Realm that is no UTF-8 (the base protocol reads it).
        bad_realm = ccr(pgw, SID, 2, 1, units=[mscc(10, used=1000)], ids=(0x1005, 0x2005))
        bad_realm.avps = [codec.raw_avp(codec.AVP_DESTINATION_REALM, b"\xff\xfe")
                          if a.code == codec.AVP_DESTINATION_REALM else a
                          for a in bad_realm.avps]
        ans = pgw.call(bad_realm)
        _check(ans, codec.INVALID_AVP_VALUE, 0x1005)
        failed = codec.find(ans, codec.AVP_FAILED_AVP)
        assert failed is not None and [a.code for a in failed.value] == [283]
        assert used_bytes(nf.oam) == 0  # none of them charged anything

        # The connection and the session are still there.
        assert codec.result_code(pgw.dwr()) == codec.SUCCESS
        cca = pgw.call(ccr(pgw, SID, 2, 1, units=[mscc(10, used=1000)]))
        assert codec.result_code(cca) == codec.SUCCESS
        assert units_of(cca)[0]["rc"] == codec.SUCCESS
        assert used_bytes(nf.oam) == 1000
