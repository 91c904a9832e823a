"""Retransmissions (T flag, same Origin-Host and End-to-End-Id) are answered with the
answer already given and charged once: from the base protocol's answer cache while the NF
runs, and from what the CHF stored (its idempotence by CC-Request-Number) after the NF was
SIGKILLed and restarted with an empty cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from nf.config import Settings
from nf.diameter import codec
from nf.diameter.gy import charging_ref
from nf.store.embedded import EmbeddedDb, free_port
from tests.diameter.client import MIB, Client, ccr, mscc, units_of
from tests.diameter.nfdia import diameter_nf
from tests.diameter.test_e2e_gy import CONFIG, edrs, provision, used_bytes

pytestmark = pytest.mark.e2e

INITIAL, UPDATE, TERMINATION = 1, 2, 3
SID = "pgw1.northwind.test;7;700"


def _same(a: codec.Message, b: codec.Message) -> None:
    ha, hb = codec.header_of(a), codec.header_of(b)
    assert ha.end_to_end == hb.end_to_end and ha.command == hb.command
    assert codec.result_code(a) == codec.result_code(b)
    assert units_of(a) == units_of(b)
    assert codec.get_int(a, 415) == codec.get_int(b, 415)


def test_retransmitted_ccr_charges_once_even_across_sigkill(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {"NF_CONFIG": str(CONFIG)}
    uri, database = db_server.uri, settings.mongodb_database
    with diameter_nf(uri, database, tmp_path, port, extra_env=env, own_group=True) as (nf, _):
        provision(nf.oam)
        with Client(port) as pgw:
            pgw.cer()
            pgw.call(ccr(pgw, SID, INITIAL, 0, units=[mscc(10)]))
            ids = pgw.ids()
            first = pgw.call(ccr(pgw, SID, UPDATE, 1, units=[mscc(10, used=MIB // 2)],
                                 ids=ids))
            assert units_of(first)[0]["rc"] == codec.SUCCESS
            assert used_bytes(nf.oam) == MIB // 2
            # The PGW did not see the answer and sends the CCR again: T flag, new HbH.
            again = pgw.call(ccr(pgw, SID, UPDATE, 1, units=[mscc(10, used=MIB // 2)],
                                 retransmit=True, ids=(ids[0] + 1000, ids[1])))
            assert codec.header_of(again).hop_by_hop == ids[0] + 1000
            _same(first, again)
            assert used_bytes(nf.oam) == MIB // 2
        nf.kill_group()  # the whole NF dies at once: the answer cache is gone
    with diameter_nf(uri, database, tmp_path, port, extra_env=env) as (nf, _), \
            Client(port) as pgw:
        assert codec.result_code(pgw.cer()) == codec.SUCCESS
        after = pgw.call(ccr(pgw, SID, UPDATE, 1, units=[mscc(10, used=MIB // 2)],
                             retransmit=True, ids=(ids[0] + 2000, ids[1])))
        _same(first, after)
        assert used_bytes(nf.oam) == MIB // 2  # charged once
        # The session goes on where it was.
        cca = pgw.call(ccr(pgw, SID, UPDATE, 2, units=[mscc(10, used=MIB // 4)]))
        assert units_of(cca)[0]["rc"] == codec.SUCCESS
        cca = pgw.call(ccr(pgw, SID, TERMINATION, 3, units=[mscc(10, rsu=None, used=0)]))
        assert codec.result_code(cca) == codec.SUCCESS
        again = pgw.call(ccr(pgw, SID, TERMINATION, 3, units=[mscc(10, rsu=None, used=0)],
                             retransmit=True, ids=pgw.ids()))
        assert codec.result_code(again) == codec.SUCCESS
        assert used_bytes(nf.oam) == MIB // 2 + MIB // 4
    docs = edrs(settings, charging_ref("northwind", SID), 4)
    assert [d["invocation_sequence_number"] for d in docs] == [0, 1, 2, 3]
