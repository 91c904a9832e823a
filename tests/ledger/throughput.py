"""Measure the ledger's charge-step throughput and CPU cost against the embedded database.

Not a test (no timed assertions)::

    python -m tests.ledger.throughput [--seconds 5] [--runs 3] [--only distinct50,...]
                                      [--cpu-steps 2000] [--profile]

starts a SecantusDB server, seeds subscribers with ``bulk_create_subscribers`` and, for each
scenario, runs closed-loop workers that each drive one charging session (every step commits
the previous grant and reserves a new one, with an increasing sequence number, as the CHF
does). Scenarios: many distinct subscribers at 50 and 200 concurrent, one busy subscriber
(50 sessions), one family pool of 5 members (50 sessions). It prints, per scenario, the
median over ``--runs`` of: steps/s, this process's CPU per step and the database server's
CPU per step. ``--cpu-steps`` also times sequential steps on one warmed-up subscriber in
process (CPU per step, ``--profile`` prints the top of a cProfile of them).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import time
from datetime import timedelta
from pathlib import Path

from pymongo import AsyncMongoClient

from nf.catalog import CatalogHolder
from nf.clock import SystemClock
from nf.config import Settings
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.ledger.port import ChargeStep
from nf.store import embedded
from tests.ledger import helpers as h

ROOT = Path(__file__).resolve().parents[2]
_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """User+system CPU seconds used so far by process ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / _TICK


def _step(supi: str, session: str, seq: int, used: int, requested: int) -> ChargeStep:
    now = SystemClock().now()
    return ChargeStep(supi=supi, session_id=session, rating_group=10, serving_plmn=h.HOME_PLMN,
                      used_bytes=used, requested_bytes=requested, sequence=seq,
                      reservation_expires_at=now + timedelta(seconds=300), now=now)


async def _run(led: MongoLedger, supis: list[str], concurrency: int, seconds: float,
               tag: str) -> int:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        supi = supis[i % len(supis)]
        held, seq = 0, 0
        while time.perf_counter() < stop:
            seq += 1
            out = await led.charge(_step(supi, f"{tag}w{i}", seq, held, 4096))
            held = out.granted_bytes
            done += 1
        await led.close_session(supi, f"{tag}w{i}", SystemClock().now())

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done


async def _measure(led: MongoLedger, server_pid: int, supis: list[str], concurrency: int,
                   seconds: float, tag: str) -> tuple[float, float, float]:
    """(steps/s, client CPU us/step, server CPU us/step) of one run."""
    c0, s0, t0 = time.process_time(), _proc_cpu(server_pid), time.perf_counter()
    n = await _run(led, supis, concurrency, seconds, tag)
    dt = time.perf_counter() - t0
    c1, s1 = time.process_time(), _proc_cpu(server_pid)
    return n / dt, (c1 - c0) / n * 1e6, (s1 - s0) / n * 1e6


async def _sequential(led: MongoLedger, supi: str, steps: int, profile: bool) -> float:
    """CPU us per step for ``steps`` one-at-a-time steps on ``supi`` (busy: 8 sessions)."""
    held = [0] * 8
    seqs = [0] * 8

    async def one(k: int) -> None:
        s = k % 8
        seqs[s] += 1
        out = await led.charge(_step(supi, f"seq{s}", seqs[s], held[s], 4096))
        held[s] = out.granted_bytes

    for k in range(400):  # warm up: fill whatever per-subscriber memory there is
        await one(k)
    prof = cProfile.Profile() if profile else None
    c0 = time.process_time()
    if prof is not None:
        prof.enable()
    for k in range(steps):
        await one(k)
    if prof is not None:
        prof.disable()
    per = (time.process_time() - c0) / steps * 1e6
    if prof is not None:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        print(buf.getvalue())
    return per


async def main(args: argparse.Namespace) -> None:
    server = embedded.start(None)
    try:
        settings = Settings.load(ROOT / "tests" / "data" / "nf-test.yaml",
                                 mongodb_uri=server.uri, mongodb_database="throughput")
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            server.uri, tz_aware=True, maxPoolSize=200)
        db = client["throughput"]
        await client.drop_database("throughput")
        led = MongoLedger(db, settings, CatalogHolder.from_dir(h.TEST_CATALOG))
        await led.ensure_indexes()
        now = SystemClock().now()
        n = 10_000
        t0 = time.perf_counter()
        made = await led.bulk_create_subscribers(
            (NewSubscriber(supi=f"imsi-00101{i:010d}", brand="testco",
                           home_network="northwind", plan_offer_id="t-unlimited")
             for i in range(n)), now)
        dt = time.perf_counter() - t0
        print(f"bulk_create_subscribers: {made} in {dt:.2f} s = {made / dt:,.0f}/s")
        many = [f"imsi-00101{i:010d}" for i in range(n)]
        await h.family(led, now, "imsi-009990000000001",
                       [f"imsi-00999000000000{k}" for k in range(2, 6)], "testco",
                       "t-family")
        fam = [f"imsi-00999000000000{k}" for k in range(1, 6)]
        pid = server.process.pid
        scenarios: dict[str, tuple[list[str], int]] = {
            "distinct50": (many, 50), "distinct200": (many, 200), "busy50": (many[:1], 50),
            "family50": (fam, 50)}
        only = [o for o in args.only.split(",") if o] if args.only else list(scenarios)
        print(f"median of {args.runs} runs of {args.seconds:g} s")
        for name in only:
            supis, conc = scenarios[name]
            runs = [await _measure(led, pid, supis, conc, args.seconds, f"{name}r{r}")
                    for r in range(args.runs)]
            med = [statistics.median(x[k] for x in runs) for k in range(3)]
            print(f"{name:12s} {med[0]:8,.0f} steps/s   client {med[1]:6,.0f} us/step   "
                  f"db {med[2]:6,.0f} us/step   runs: "
                  + ", ".join(f"{x[0]:,.0f}" for x in runs))
        if args.cpu_steps:
            per = await _sequential(led, many[-1], args.cpu_steps, args.profile)
            print(f"sequential steps on one busy subscriber: {per:,.0f} us CPU/step in "
                  "process")
        await client.drop_database("throughput")
        await client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--only", default="")
    p.add_argument("--cpu-steps", type=int, default=2000)
    p.add_argument("--profile", action="store_true")
    asyncio.run(main(p.parse_args()))
