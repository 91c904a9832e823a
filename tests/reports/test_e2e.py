"""EDRs made by the real CHF and PCF over HTTP/2 (``nf serve``, simulated SMFs of the three
host networks, purchases through the OAM API), exported with ``nf edr export`` and
reported with ``nf report``: the usage report's totals equal what the SMFs reported, per
brand and host network, to the byte; the wholesale reconciliation finds exactly the
differences planted in an invoice built from the SMFs' own counts."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.ledger.mongo import MongoLedger
from nf.reports.run import Request, run_report
from nf.store.embedded import EmbeddedDb
from nf.store.mongo import Db
from tests.e2e.nfproc import ROOT, TEST_CONFIG, running_nf
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, Usage, httpx_transport

pytestmark = pytest.mark.e2e

ADMIN = {"X-API-Key": "demo-admin-key"}
KIB, MIB = 1024, 1024 * 1024
# (SUPI, brand, home network, plan, the SMF's PLMN, serving PLMN)
SUBSCRIBERS = [
    ("imsi-001010000000801", "lumen", "northwind", "lumen-unlimited", "00101", "00101"),
    ("imsi-001010000000802", "lumen", "northwind", "lumen-capped-2gb", "00101", "00101"),
    ("imsi-001010000000803", "lumen", "northwind", "lumen-unlimited", "00101", "99970"),
    ("imsi-001020000000804", "harbor", "bluepeak", "harbor-unlimited", "00102", "00102"),
    ("imsi-001020000000805", "harbor", "bluepeak", "harbor-unlimited", "00102", "00102"),
    ("imsi-999001000000806", "cartwheel", "redmoor", "cartwheel-unlimited", "999001",
     "999001"),
]
NETWORK_OF_PLMN = {"00101": "northwind", "00102": "bluepeak", "999001": "redmoor"}
ROAMER = "imsi-001010000000803"
CAPPED = "imsi-001010000000802"


def _cli(settings: Settings, *args: str, timeout: float = 180
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({"NF_CONFIG": str(TEST_CONFIG), "NF_MONGODB_URI": settings.mongodb_uri,
                "NF_MONGODB_DATABASE": settings.mongodb_database})
    return subprocess.run([sys.executable, "-m", "nf.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, env=env)


async def _wait_for_edrs(db: Db, releases: int, deadline_s: float = 60) -> None:
    """EDRs may be stored after the CHF answers: wait for every session's release."""
    end = time.monotonic() + deadline_s
    while True:
        n = await db.edrs.count_documents({"kind": "charging", "event": "release"})
        if n >= releases:
            return
        assert time.monotonic() < end, f"only {n} of {releases} release EDRs stored"
        await asyncio.sleep(0.2)


async def _session(client: httpx.AsyncClient, sbi: str, notify: str, rng: random.Random,
                   sub: tuple[str, ...], n: int) -> list[tuple[str, int, int]]:
    """One PDU session: PCF create, CHF create, updates, a retransmission, release, PCF
    delete. Returns what the SMF reported: (day, uplink, downlink) per report."""
    supi, _, _, _, plmn, serving = sub
    pol = PolicySim(client, sbi, supi, notify, serving_plmn=serving, pdu_session_id=n)
    assert (await pol.create()).status_code == 201
    smf = SmfSim(httpx_transport(client, sbi), supi, plmn=plmn, serving_plmn=serving,
                 notify_uri=notify, pdu_session_id=n)
    ex = await smf.create(requested=10 * MIB)
    assert ex.status == 201, ex.response
    reported = []
    for i in range(3):
        if supi == CAPPED and i == 2:
            u = Usage(100 * MIB, 1948 * MIB, "QUOTA_EXHAUSTED")  # to the 2 GiB cap
        else:
            u = Usage(rng.randrange(200 * KIB), rng.randrange(8 * MIB), "QUOTA_THRESHOLD")
        ex = await smf.update(u, 10 * MIB)
        assert ex.status == 200, ex.response
        reported.append((datetime.now(UTC).date().isoformat(), u.uplink, u.downlink))
        if i == 1:
            assert (await smf.retransmit()).status == 200  # charged once
    last = Usage(rng.randrange(100 * KIB), rng.randrange(MIB), "FINAL")
    assert (await smf.release(last)).status == 204
    reported.append((datetime.now(UTC).date().isoformat(), last.uplink, last.downlink))
    assert (await pol.delete()).status_code == 204
    return reported


async def test_reports_match_what_the_smfs_reported(
        db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path) -> None:
    rng = random.Random(14)
    start = datetime.now(UTC)
    sessions_per_sub = 2
    # What the SMFs reported: per (brand, network) [ul, dl] and per (day, supi) bytes.
    smf_totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    per_day: dict[tuple[str, str], int] = defaultdict(int)
    async with NotificationReceiver() as peer, \
            httpx.AsyncClient(http2=True, http1=False, timeout=30) as client:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path) as nf:
            for supi, brand, home, plan, _, _ in SUBSCRIBERS:
                r = await client.post(f"{nf.oam}/provisioning/v1/subscribers", headers=ADMIN,
                                      json={"supi": supi, "brand": brand, "homeNetwork": home,
                                            "planOfferId": plan,
                                            "gpsi": "msisdn-1555" + supi[-7:]})
                assert r.status_code == 201, r.text
            for offer, who in (("lumen-roam-north-1gb-1d", ROAMER),
                               ("lumen-addon-1gb-7d", ROAMER),
                               ("lumen-addon-1gb-7d", SUBSCRIBERS[0][0])):
                r = await client.post(f"{nf.oam}/provisioning/v1/subscribers/{who}/purchases",
                                      headers=ADMIN, json={"offerId": offer})
                assert r.status_code == 201, r.text
            jobs = [(sub, k + 1) for sub in SUBSCRIBERS for k in range(sessions_per_sub)]
            results = await asyncio.gather(*(
                _session(client, nf.sbi, peer.url(f"/smf/{sub[0]}/{k}"), rng, sub, k)
                for sub, k in jobs))
            for (sub, _), reported in zip(jobs, results, strict=True):
                key = (sub[1], NETWORK_OF_PLMN[sub[4]])
                for day, ul, dl in reported:
                    smf_totals[key][0] += ul
                    smf_totals[key][1] += dl
                    per_day[(day, sub[0])] += ul + dl
            await _wait_for_edrs(db, len(jobs))

    out = tmp_path / "export"
    end = datetime.now(UTC) + timedelta(hours=1)
    r = _cli(settings, "edr", "export", "--from", start.isoformat(), "--to", end.isoformat(),
             "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "exported" in r.stdout
    r = _cli(settings, "report", "usage", "--dir", str(out), "--from",
             start.date().isoformat(), "--to", end.date().isoformat(),
             "--format", "json")
    assert r.returncode == 0, r.stderr
    reported: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in json.loads(r.stdout)["rows"]:
        t = reported[(row["brand"], row["host_network"])]
        t[0] += row["bytes_ul"]
        t[1] += row["bytes_dl"]
        t[2] += row["bytes_total"]
    assert {k: v[:2] for k, v in reported.items()} == dict(smf_totals)
    assert all(v[2] == v[0] + v[1] for v in reported.values())

    # The other reports see the same sessions (in process: same code as the CLI).
    days = (start.date(), end.date())
    assert settings.catalog_dir is not None
    ledger = MongoLedger(db, settings, CatalogHolder.from_dir(settings.catalog_dir))
    uptake = await run_report(Request("uptake", *days), export_dir=out)
    assert {(x["offer_id"], x["purchases"], x["revenue_minor"])
            for x in uptake[0].records()} == {("lumen-roam-north-1gb-1d", 1, 500),
                                              ("lumen-addon-1gb-7d", 2, 600)}
    roam = (await run_report(Request("roaming", *days), export_dir=out, ledger=ledger))[0]
    assert {(x["zone"], x["pass"]) for x in roam.records()} <= {
        ("north zone", "lumen-roam-north-1gb-1d"), ("north zone", "(no pass)")}
    roamer_bytes = sum(v for (_, s), v in per_day.items() if s == ROAMER)
    assert sum(x["bytes"] for x in roam.records()) == roamer_bytes
    caps = (await run_report(Request("caps", *days), export_dir=out, ledger=ledger))[0]
    assert [(x["brand"], x["plan"], x["subscribers"], x["blocked"])
            for x in caps.records()] == [("lumen", "lumen-capped-2gb", 1, 1)]

    # Wholesale: an invoice of northwind made from the SMFs' counts, with planted errors.
    north = sorted((d, s, b) for (d, s), b in per_day.items() if s.startswith("imsi-00101"))
    over_d, over_s, _ = north[0]  # billed 5 MiB too much
    near_d, near_s, _ = next(x for x in north if x[1] != over_s)  # +10 B: tolerated
    dropped = next(s for _, s, _ in north if s not in (over_s, near_s))  # missing
    lines = ["day,plmn,subscriber,bytes"]
    for d, s, b in north:
        if s == dropped:
            continue
        if (d, s) == (over_d, over_s):
            b += 5 * MIB
        elif (d, s) == (near_d, near_s):
            b += 10
        subscriber = s if s != near_s else "msisdn-1555" + s[-7:]  # by GPSI
        lines.append(f"{d},00101,{subscriber},{b}")
    lines.append(f"{over_d},00101,imsi-001010000000999,123456")  # not ours
    invoice = tmp_path / "northwind.csv"
    invoice.write_text("\n".join(lines) + "\n")
    r = _cli(settings, "report", "wholesale", "--dir", str(out), "--network", "northwind",
             "--month", start.strftime("%Y-%m"), "--invoice", str(invoice),
             "--tolerance-bytes", "1024", "--tolerance-pct", "0", "--format", "json")
    assert r.returncode == 0, r.stderr
    got: dict[str, Any] = json.loads(r.stdout)
    assert [(x["day"], x["subscriber"], x["difference_bytes"])
            for x in got["differences"]["rows"]] == [(over_d, over_s, 5 * MIB)]
    assert [x["subscriber"] for x in got["invoice_only"]["rows"]] \
        == ["imsi-001010000000999"]
    assert [x["subscriber"] for x in got["edr_only"]["rows"]] == [dropped]
    totals = got["totals"]["rows"][0]
    assert totals["edr_bytes"] == sum(b for _, _, b in north)
