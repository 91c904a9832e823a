"""A realistic charging sequence from a simulated SMF over real HTTP/2 against the real
``nf serve`` (both ports) and the real database, including a retransmission, a CHF restart
mid-session, the cap, a top-up through the provisioning API and the re-authorisation it
triggers. Every exchange is validated against the 3GPP document and ``openapi/chf.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from nf.clock import SystemClock
from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from nf.store.mongo import Db
from tests import conformance as c
from tests.chf.harness import MIB, validate_exchange
from tests.e2e.nfproc import running_nf
from tests.ledger import helpers as h
from tests.peers import NotificationReceiver
from tests.smf_sim import SmfSim, Usage, httpx_transport, unit_info

pytestmark = pytest.mark.e2e

SUPI = "imsi-001010000000777"
ADMIN = {"X-API-Key": "demo-admin-key"}


async def test_smf_session_across_a_restart_to_the_cap_and_back(
        db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path) -> None:
    env = {"NF_CATALOG_DIR": str(h.TEST_CATALOG)}
    ledger = h.make_ledger(db, settings, h.TEST_CATALOG)
    await ledger.ensure_indexes()
    now = SystemClock().now()
    await h.subscriber(ledger, now, SUPI, "t-capped", brand="testco")  # 10 MiB, blocks
    async with NotificationReceiver() as peer, \
            httpx.AsyncClient(http2=True, http1=False, timeout=10) as client:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            smf = SmfSim(httpx_transport(client, nf.sbi), SUPI,
                         notify_uri=peer.url("/smf/notify/1"))
            ex = await smf.create(requested=3 * MIB)
            assert ex.status == 201 and smf.granted == 3 * MIB
            ex = await smf.update(Usage(MIB, 2 * MIB, "QUOTA_THRESHOLD"), 3 * MIB)
            assert ex.status == 200 and smf.granted == 3 * MIB
            again = await smf.retransmit()  # the answer was lost; the SMF asks again
            assert again.status == 200 and again.response == ex.response
        # The CHF restarts; the SMF carries on with the same session.
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            smf.transport = httpx_transport(client, nf.sbi)
            ex = await smf.update(Usage(MIB, 2 * MIB, "QUOTA_THRESHOLD"), 3 * MIB)
            assert ex.status == 200 and smf.granted == 3 * MIB
            ex = await smf.update(Usage(0, 3 * MIB, "QUOTA_EXHAUSTED"), 3 * MIB)
            info = unit_info(ex.response, 10)
            # The last MiB before the cap, with the brand's redirect to its top-up page.
            assert info["grantedUnit"]["totalVolume"] == MIB
            assert info["finalUnitIndication"]["finalUnitAction"] == "REDIRECT"
            assert info["finalUnitIndication"]["redirectServer"]["redirectServerAddress"] \
                == "https://testco.example/top-up"
            ex = await smf.update(Usage(0, MIB, "FINAL"), 3 * MIB)
            info = unit_info(ex.response, 10)
            assert info["resultCode"] == "QUOTA_LIMIT_REACHED" and "grantedUnit" not in info
            # A top-up through the provisioning API re-opens the session.
            r = await client.post(f"{nf.oam}/provisioning/v1/subscribers/{SUPI}/purchases",
                                  json={"offerId": "t-addon-2"}, headers=ADMIN)
            assert r.status_code == 201, r.text
            got = await peer.wait_for(lambda q: q.path == "/smf/notify/1", 10)
            assert got.http_version == "2"
            assert got.json == {"notificationType": "REAUTHORIZATION",
                                "reauthorizationDetails": [{"ratingGroup": 10}]}
            c.validate_schema(c.CHF, "ChargingNotifyRequest", got.json)
            ex = await smf.update(None, 3 * MIB)
            assert unit_info(ex.response, 10)["resultCode"] == "SUCCESS"
            assert smf.granted == 2 * MIB
            ex = await smf.release(Usage(0, 512 * 1024, "FINAL"))
            assert ex.status == 204
            assert (await smf.retransmit()).status == 204
    for e in smf.exchanges:
        assert e.request is not None
        validate_exchange(e.method, e.path, e.request, e.status,
                          None if e.response is None else json.dumps(e.response).encode(),
                          e.headers.get("content-type", "application/json").split(";")[0],
                          e.headers)
    reported = 3 * MIB + 3 * MIB + 3 * MIB + MIB + 512 * 1024
    records = [d async for d in db["edrs"].find({"charging_data_ref": smf.ref})]
    # create, 5 updates, release: the retransmissions wrote nothing
    assert sorted(r["event"] for r in records) == ["create", "release"] + ["update"] * 5
    assert sum(r["used_total"] for r in records) == reported
    bal = await ledger.balance(SUPI, SystemClock().now())
    assert bal is not None
    assert sum(b.used_bytes for b in bal.buckets) == reported
    assert sum(b.reserved_bytes for b in bal.buckets) == 0
