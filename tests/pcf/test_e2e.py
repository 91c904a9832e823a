"""The real ``nf serve`` (both ports, Granian), the real database and a real HTTP/2 SMF: a
demo subscriber on an unlimited-then-throttled plan crosses the cap through the CHF, the SMF
receives the throttle, and full speed comes back after an add-on bought through the
provisioning API on the OAM port. Every exchange is validated against the 3GPP documents."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests import conformance as c
from tests.e2e.nfproc import running_nf
from tests.pcf.harness import ambr_of, use_until_throttled
from tests.peers import NotificationReceiver, Reply
from tests.smf_sim import PolicySim, SmfSim, httpx_transport, session_ambr

pytestmark = pytest.mark.e2e

GIB = 1024**3
LUMEN = {"X-API-Key": "demo-key-lumen"}
PROV = "/provisioning/v1"


def _networks(settings: Settings) -> str:
    # The demo plan has 15 GiB at full speed; big grants let the test reach the cap in a
    # few updates instead of 1,536 (the plan itself is unchanged).
    return json.dumps([{**n.model_dump(), "default_grant_bytes": 8 * GIB}
                       for n in settings.networks])


async def test_throttle_at_the_cap_and_restore_after_an_addon(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    supi = "imsi-001010000000401"
    env = {"NF_NETWORKS": _networks(settings)}
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            r = await client.post(nf.oam + PROV + "/subscribers", headers=LUMEN, json={
                "supi": supi, "homeNetwork": "northwind", "planOfferId": "lumen-unlimited"})
            assert r.status_code == 201, r.text
            pol = PolicySim(client, nf.sbi, supi, smf.url("/smf/pol"))
            r = await pol.create()
            assert r.status_code == 201 and r.http_version == "HTTP/2"
            assert session_ambr(r.json()) == {"uplink": "4 Mbps", "downlink": "20 Mbps"}

            chg = SmfSim(httpx_transport(client, nf.sbi), supi, notify_uri=smf.url("/smf/chg"))
            assert (await chg.create(requested=8 * GIB)).status == 201
            throttle = await use_until_throttled(chg, smf, "/smf/pol/update", step=8 * GIB,
                                                 limit=6)
            assert ambr_of(throttle) == {"uplink": "64 Kbps", "downlink": "128 Kbps"}
            assert throttle.json["resourceUri"] == pol.location

            smf.clear()
            r = await client.post(f"{nf.oam}{PROV}/subscribers/{supi}/purchases",
                                  headers=LUMEN, json={"offerId": "lumen-addon-1gb-7d"})
            assert r.status_code == 201, r.text
            restore = await smf.wait_for(lambda x: x.path == "/smf/pol/update")
            assert ambr_of(restore) == {"uplink": "4 Mbps", "downlink": "20 Mbps"}

            got = await pol.get()
            assert got.status_code == 200
            assert session_ambr(got.json()["policy"])["downlink"] == "20 Mbps"
            assert (await pol.delete()).status_code == 204
            for resp in pol.responses:
                c.validate_exchange(c.PCF, resp)


async def test_a_throttle_the_smf_could_not_take_survives_a_restart(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    supi = "imsi-001010000000402"
    env = {"NF_NETWORKS": _networks(settings), "NF_NOTIFY__LEASE_S": "1",
           "NF_NOTIFY__MAX_BACKOFF_S": "0.5", "NF_NOTIFY__MAX_ATTEMPTS": "100"}
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        smf.respond("/smf/pol/", Reply(503))  # the SMF is overloaded for now
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            r = await client.post(nf.oam + PROV + "/subscribers", headers=LUMEN, json={
                "supi": supi, "homeNetwork": "northwind", "planOfferId": "lumen-unlimited"})
            assert r.status_code == 201, r.text
            pol = PolicySim(client, nf.sbi, supi, smf.url("/smf/pol"))
            assert (await pol.create()).status_code == 201
            chg = SmfSim(httpx_transport(client, nf.sbi), supi, notify_uri=smf.url("/smf/chg"))
            assert (await chg.create(requested=8 * GIB)).status == 201
            first = await use_until_throttled(chg, smf, "/smf/pol/update", step=8 * GIB,
                                              limit=6)
            assert first.status == 503
        # The NF stopped with the throttle undelivered; the SMF recovers; a new NF starts.
        smf.reset_rules()
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env):
            ok = await smf.wait_for(lambda x: x.path == "/smf/pol/update" and x.status == 204,
                                    timeout_s=20)
            assert ambr_of(ok) == {"uplink": "64 Kbps", "downlink": "128 Kbps"}


async def test_a_family_pool_running_dry_throttles_every_member_and_an_addon_restores(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    owner, kid, other = ("imsi-001010000000410", "imsi-001010000000411",
                         "imsi-001010000000412")
    env = {"NF_NETWORKS": _networks(settings)}
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            for s in (owner, kid, other):
                r = await client.post(nf.oam + PROV + "/subscribers", headers=LUMEN,
                                      json={"supi": s, "homeNetwork": "northwind"})
                assert r.status_code == 201, r.text
            r = await client.post(nf.oam + PROV + "/groups", headers=LUMEN,
                                  json={"ownerSupi": owner, "offerId": "lumen-family-30gb"})
            assert r.status_code == 201, r.text
            gid = r.json()["groupId"]
            for s in (kid, other):
                r = await client.post(f"{nf.oam}{PROV}/groups/{gid}/members", headers=LUMEN,
                                      json={"supi": s})
                assert r.status_code in (200, 201), r.text
            pols = {s: PolicySim(client, nf.sbi, s, smf.url(f"/smf/{i}"))
                    for i, s in enumerate((owner, kid, other))}
            for p in pols.values():
                assert (await p.create()).status_code == 201
            # Owner and kid each use their 15 GiB member cap: 30 GiB, the pool is dry.
            for i, s in enumerate((owner, kid)):
                chg = SmfSim(httpx_transport(client, nf.sbi), s, notify_uri=smf.url(f"/chg/{i}"))
                assert (await chg.create(requested=8 * GIB)).status == 201
                await use_until_throttled(chg, smf, f"/smf/{i}/update", step=8 * GIB,
                                          limit=6)
            got = await smf.wait_for_all(lambda x: x.path.endswith("/update"), count=3)
            assert sorted(x.path for x in got) == ["/smf/0/update", "/smf/1/update",
                                                   "/smf/2/update"]
            assert all(ambr_of(x)["downlink"] == "128 Kbps" for x in got)
            # The third member, who used nothing, buys an add-on: full speed for them.
            smf.clear()
            r = await client.post(f"{nf.oam}{PROV}/subscribers/{other}/purchases",
                                  headers=LUMEN, json={"offerId": "lumen-addon-1gb-7d"})
            assert r.status_code == 201, r.text
            back = await smf.wait_for(lambda x: x.path == "/smf/2/update")
            assert ambr_of(back)["downlink"] == "20 Mbps"
            for p in pols.values():
                for resp in p.responses:
                    c.validate_exchange(c.PCF, resp)
