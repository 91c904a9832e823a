"""SMS notice benchmark (``python -m bench.sms``): latency from the charging update that
crosses a usage threshold to ``submit_sm`` at the SMSC, and the SMS throughput of one NF
process against that SMSC.

The SMSC is the test SMSC on the npm ``smpp`` package (``tests/subnotify/smsc.js``; needs
Node.js). Latency: one ``nf serve`` (SBI + OAM processes) on the embedded database; each
sample is a fresh subscriber on a 10 MiB plan whose SMF reports 5 MiB in one update (50%),
timed from just before the HTTP/2 request to the SMSC's arrival stamp of the PDU. The
samples run one after another, so this is the path's own latency, not its latency under
load. Throughput: ``--burst`` notices already in the outbox, sent by one process's SMPP
channel (one bind, window and rate from the options), from the first ``submit_sm`` to the
last, and until every delivery receipt is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from nf.catalog import CatalogHolder
from nf.clock import SystemClock
from nf.config import Settings, SmsBrand, SmsSettings
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.ledger.state import Member
from nf.runtime import Runtime
from nf.store import embedded
from nf.store.mongo import make_client
from nf.subnotify import events
from nf.subnotify.part import SubNoticePart
from tests.e2e.nfproc import TEST_CONFIG, running_nf
from tests.ledger.helpers import TEST_CATALOG
from tests.smf_sim import SmfSim, Usage, httpx_transport
from tests.subnotify.smsc import PASSWORD, SYSTEM_ID, running_smsc

MIB = 1024 * 1024


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


async def latency(db_uri: str, dbname: str, tmp: Path, smsc: Any, samples: int
                  ) -> list[float]:
    settings = Settings.load(TEST_CONFIG, mongodb_uri=db_uri, mongodb_database=dbname)
    client = make_client(settings)
    ledger = MongoLedger(client[dbname], settings, CatalogHolder.from_dir(TEST_CATALOG))
    await ledger.ensure_indexes()
    now = SystemClock().now()
    for i in range(samples):
        await ledger.create_subscriber(NewSubscriber(
            supi=f"imsi-0010190{i:07d}", brand="testco", home_network="northwind",
            gpsi=f"msisdn-3460{i:07d}", plan_offer_id="t-unlimited"), now)
    await client.close()
    env = {"NF_CATALOG_DIR": str(TEST_CATALOG), "NF_SMS__ENABLED": "true",
           "NF_SMS__PORT": str(smsc.port), "NF_SMS__SYSTEM_ID": SYSTEM_ID,
           "NF_SMS__PASSWORD": PASSWORD, "NF_LOG_LEVEL": "WARNING",
           "NF_SMS__BRANDS": json.dumps({"testco": {"source_addr": "TestCo"}})}
    out: list[float] = []
    with running_nf(db_uri, dbname, tmp, extra_env=env) as nf:
        async with httpx.AsyncClient(http2=True, http1=False, timeout=10) as c:
            for i in range(samples):
                smf = SmfSim(httpx_transport(c, nf.sbi), f"imsi-0010190{i:07d}")
                assert (await smf.create(requested=3 * MIB)).status == 201
                dest = f"3460{i:07d}"
                t0 = time.time()
                ex = await smf.update(Usage(0, 5 * MIB, "QUOTA_THRESHOLD"), 3 * MIB)
                assert ex.status == 200
                rec = await smsc.wait(lambda rs, d=dest: any(
                    r["pdu"] == "submit_sm" and r.get("destination_addr") == d
                    for r in rs), 30)
                t = next(r["t"] for r in rec if r["pdu"] == "submit_sm"
                         and r.get("destination_addr") == dest)
                out.append(t / 1000 - t0)
    return out


async def throughput(db_uri: str, dbname: str, smsc: Any, burst: int, rate: float,
                     window: int) -> dict[str, float]:
    settings = Settings.load(TEST_CONFIG, mongodb_uri=db_uri, mongodb_database=dbname)
    settings = settings.model_copy(update={"catalog_dir": TEST_CATALOG, "sms": SmsSettings(
        enabled=True, port=smsc.port, system_id=SYSTEM_ID, password=PASSWORD,
        brands={"testco": SmsBrand(source_addr="TestCo")}, throughput_per_s=rate,
        window=window)})
    client = make_client(settings)
    db = client[dbname]
    rt = Runtime(settings=settings, clock=SystemClock(), db=db)
    ledger = MongoLedger(db, settings, CatalogHolder.from_dir(TEST_CATALOG))
    part = SubNoticePart(rt, ledger, ledger.catalog)
    await part.ensure_indexes()
    now = rt.clock.now()
    docs = []
    for i in range(burst):
        m = Member(supi=f"imsi-0010191{i:07d}", brand="testco", home_network="northwind",
                   gpsi=f"msisdn-3461{i:07d}")
        n = events.Notice(events.key(m.supi, events.Kind.USAGE, "80", "bench"), m.supi,
                          events.Kind.USAGE, now, {"pct": 80, "used": 8 * MIB,
                                                   "allowance": 10 * MIB,
                                                   "renews": now + timedelta(days=30)})
        docs += await part._render(n, m, now)
    before = len(smsc.submits())
    await part.outbox.insert(docs)
    task = asyncio.create_task(part.sms.run())
    t0 = time.time()
    await smsc.wait(lambda rs: len([r for r in rs if r["pdu"] == "submit_sm"])
                    >= before + burst, 600)
    col = db["sub_notices"]
    for _ in range(12_000):  # at most ~10 minutes
        if await col.count_documents({"state": "delivered"}) >= burst:
            break
        await asyncio.sleep(0.05)
    t_done = time.time()
    rt.stopping.set()
    await asyncio.wait_for(task, 30)
    await client.close()
    subs = smsc.submits()[before:]
    first, last = subs[0]["t"] / 1000, subs[-1]["t"] / 1000
    return {"sms": burst, "submit_per_s": (burst - 1) / max(1e-9, last - first),
            "delivered_per_s": burst / max(1e-9, t_done - t0)}


async def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sms", description=__doc__)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--burst", type=int, default=2000)
    p.add_argument("--rate", type=float, default=10_000.0, help="sms.throughput_per_s")
    p.add_argument("--window", type=int, default=50, help="sms.window")
    a = p.parse_args()
    server = embedded.start(None)
    try:
        with tempfile.TemporaryDirectory() as d, running_smsc(Path(d)) as smsc:
            lat = await latency(server.uri, "bench_sms_lat", Path(d), smsc, a.samples)
            thr = await throughput(server.uri, "bench_sms_thr", smsc, a.burst, a.rate,
                                   a.window)
    finally:
        server.stop()
    print(json.dumps({
        "database": server.kind,
        "latency_s": {"samples": len(lat), "p50": round(statistics.median(lat), 4),
                      "p99": round(pct(lat, 99), 4), "max": round(max(lat), 4)},
        "throughput": {k: round(v, 1) for k, v in thr.items()},
        "window": a.window, "rate_limit_per_s": a.rate}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
