"""Latency of CHF create and update, one request at a time, over real HTTP/2.

``python -m bench.chf_latency [--requests 300] [--rounds 3]`` starts the embedded database
(SecantusDB's Rust server when built), seeds subscribers on the demo ``lumen-unlimited``
plan, starts the real ``nf serve`` on ephemeral ports and, per round, opens ``--requests``
charging sessions one after the other (create), then sends one usage update to each
(update), then releases them. It prints p50/p90/p99/max per operation and round, and the
same as JSON on the last line. Sequential requests measure the latency of one request
(database round trips plus the server), not throughput: for that, see ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.profile_chf import chf_body
from nf.catalog import CatalogHolder
from nf.clock import SystemClock
from nf.config import Settings
from nf.demo import DEMO_CONFIG
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.store import embedded
from nf.store.mongo import make_client

ROOT = Path(__file__).resolve().parents[1]
CHF = "/nchf-convergedcharging/v3/chargingdata"
MIB = 1024 * 1024


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(ms), "p50_ms": round(q[49], 3), "p90_ms": round(q[89], 3),
            "p99_ms": round(q[98], 3), "max_ms": round(ms[-1], 3)}


async def _seed(settings: Settings, supis: list[str]) -> None:
    client = make_client(settings)
    try:
        assert settings.catalog_dir is not None
        ledger = MongoLedger(client[settings.mongodb_database], settings,
                             CatalogHolder.from_dir(settings.catalog_dir))
        await ledger.ensure_indexes()
        await ledger.bulk_create_subscribers(
            [NewSubscriber(supi=s, brand="lumen", home_network="northwind",
                           plan_offer_id="lumen-unlimited") for s in supis],
            SystemClock().now())
    finally:
        await client.close()


def _start_nf(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "nf.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def _wait_ready(oam: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nf exited:\n{log.read_text()}")
        try:
            if httpx.get(oam + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nf not ready:\n{log.read_text()}")


async def _round(client: httpx.AsyncClient, sbi: str, supis: list[str], r: int
                 ) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {"create": [], "update": [], "release": []}
    refs: list[tuple[str, str, int]] = []
    for i, supi in enumerate(supis):
        cid = r * 1_000_000 + i + 1
        t0 = time.perf_counter()
        resp = await client.post(sbi + CHF, json=chf_body(supi, 0, cid, None))
        times["create"].append(time.perf_counter() - t0)
        assert resp.status_code == 201, resp.text
        refs.append((supi, resp.headers["location"].rsplit("/", 1)[1], cid))
    for supi, ref, cid in refs:
        t0 = time.perf_counter()
        resp = await client.post(f"{sbi}{CHF}/{ref}/update", json=chf_body(supi, 1, cid, MIB))
        times["update"].append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.text
    for supi, ref, cid in refs:
        body = chf_body(supi, 2, cid, MIB)
        del body["multipleUnitUsage"][0]["requestedUnit"]
        t0 = time.perf_counter()
        resp = await client.post(f"{sbi}{CHF}/{ref}/release", json=body)
        times["release"].append(time.perf_counter() - t0)
        assert resp.status_code == 204, resp.text
    return {op: _percentiles(v) for op, v in times.items()}


async def main(requests: int, rounds: int, server: str) -> dict[str, Any]:
    db = embedded.start(None)
    tmp = Path(tempfile.mkdtemp(prefix="nf-chf-bench-"))
    sbi_port, oam_port = embedded.free_port(), embedded.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({"NF_CONFIG": str(DEMO_CONFIG), "NF_MONGODB_URI": db.uri,
                "NF_MONGODB_DATABASE": "chf_latency", "NF_SERVER__SBI_PORT": str(sbi_port),
                "NF_SERVER__OAM_PORT": str(oam_port), "NF_SERVER__SERVER": server,
                "NF_LOG_LEVEL": "WARNING"})
    settings = Settings.load(DEMO_CONFIG, mongodb_uri=db.uri,
                             mongodb_database="chf_latency")
    supis = [f"imsi-00101{7000000000 + i}" for i in range(requests)]
    log = tmp / "nf.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.perf_counter()
        await _seed(settings, supis)
        seeded_s = time.perf_counter() - t0
        proc = _start_nf(env, log)
        sbi, oam = f"http://127.0.0.1:{sbi_port}", f"http://127.0.0.1:{oam_port}"
        _wait_ready(oam, proc, log)
        results = []
        async with httpx.AsyncClient(http2=True, http1=False, timeout=10) as client:
            # Warm the connection and the server's code paths.
            await _round(client, sbi, supis[: min(20, len(supis))], 99)
            for r in range(rounds):
                res = await _round(client, sbi, supis, r)
                results.append(res)
                for op, p in res.items():
                    print(f"round {r + 1} {op:8s} n={p['n']} p50={p['p50_ms']:.2f} ms "
                          f"p90={p['p90_ms']:.2f} ms p99={p['p99_ms']:.2f} ms "
                          f"max={p['max_ms']:.2f} ms", flush=True)
        return {"database": db.kind, "server": server, "requests_per_round": requests,
                "rounds": results, "seed_s": round(seeded_s, 3)}
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        db.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.chf_latency", description=__doc__)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server", choices=("granian", "hypercorn"), default="granian")
    a = ap.parse_args()
    print(json.dumps(asyncio.run(main(a.requests, a.rounds, a.server))))
