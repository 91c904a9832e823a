"""One subscriber, one balance: a 5G session (Nchf over HTTP/2) and a 4G one (Gy) at once,
each using every grant whole, are charged together to exactly the plan's cap; both end
refused at the cap, and the EDRs of each say which interface they came over."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from nf.config import Settings
from nf.diameter import codec
from nf.diameter.gy import charging_ref
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import MIB, Client, ccr, mscc, units_of
from tests.diameter.nfdia import diameter_nf
from tests.diameter.test_e2e_gy import CONFIG, SUPI, edrs, provision, used_bytes
from tests.smf_sim import SmfSim, Usage, httpx_transport, unit_info

pytestmark = pytest.mark.e2e

SID = "pgw1.northwind.test;5;500"


async def test_5g_and_4g_sessions_share_one_balance_to_the_cap(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                     extra_env={"NF_CONFIG": str(CONFIG)}) as (nf, port), Client(port) as pgw:
        provision(nf.oam)
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
            smf = SmfSim(httpx_transport(client, nf.sbi), SUPI)
            assert (await smf.create()).status == 201
            sbi_grant = smf.granted
            pgw.cer()
            [u] = units_of(pgw.call(ccr(pgw, SID, 1, 0, units=[mscc(10)])))
            gy_grant, number = int(u["granted"] or 0), 0
            assert sbi_grant == gy_grant == MIB
            sbi_open = gy_open = True
            rounds = 0
            while sbi_open or gy_open:
                rounds += 1
                assert rounds < 10, "the cap was never reached"
                if sbi_open:
                    ex = await smf.update(Usage(0, sbi_grant))
                    assert ex.status == 200, ex.response
                    info = unit_info(ex.response, 10)
                    sbi_grant = smf.granted
                    sbi_open = info["resultCode"] == "SUCCESS" and sbi_grant > 0
                if gy_open:
                    number += 1
                    [u] = units_of(pgw.call(ccr(pgw, SID, 2, number,
                                                units=[mscc(10, used=gy_grant)])))
                    gy_grant = int(u["granted"] or 0)
                    gy_open = u["rc"] == codec.SUCCESS and gy_grant > 0
                    if not gy_open:
                        assert u["rc"] == codec.CREDIT_LIMIT_REACHED
            assert info["resultCode"] == "QUOTA_LIMIT_REACHED"
            assert (await smf.release()).status == 204
            cca = pgw.call(ccr(pgw, SID, 3, number + 1, units=[mscc(10, rsu=None, used=0)]))
            assert codec.result_code(cca) == codec.SUCCESS
        assert used_bytes(nf.oam) == 3 * MIB  # the plan's cap, not a byte more
    assert smf.ref is not None
    sbi = edrs(settings, smf.ref, len(smf.exchanges))
    gy = edrs(settings, charging_ref("northwind", SID), number + 2)
    assert len(sbi) == len(smf.exchanges) and len(gy) == number + 2
    assert {d["interface"] for d in sbi} == {"sbi"} and {d["interface"] for d in gy} == {"gy"}
    assert sum(d["used_total"] for d in sbi + gy) == 3 * MIB
