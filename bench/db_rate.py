"""How many conditional ``find_one_and_update`` per second the embedded database sustains.

The ledger's hot path is one atomic conditional update per request (a reservation that wins
only if enough quota is left). This measures exactly that against SecantusDB's Rust server
and its Python server: a 2,000-document collection, ``$inc`` guarded by ``$gte``, issued
sequentially and by 16 concurrent tasks, 3 repetitions each, median reported.

    python -m bench.db_rate [--seconds 3] [--servers rust,python] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
from pathlib import Path

from pymongo import AsyncMongoClient, ReturnDocument

from nf.store import embedded

DOCS = 2_000
CONCURRENCY = 16
REPETITIONS = 3
RESULTS_FILE = Path(__file__).parent / "results" / "db_rate.md"


async def _seed(uri: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    try:
        coll = client["bench"]["wallets"]
        await coll.drop()
        await coll.insert_many([{"_id": i, "quota": 10**12, "version": 0}
                                for i in range(DOCS)])
    finally:
        await client.close()


async def _run(uri: str, tasks: int, seconds: float) -> tuple[float, int]:
    """Ops/s over ``seconds`` with ``tasks`` concurrent loops; and how many failed."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, maxPoolSize=tasks + 4)
    coll = client["bench"]["wallets"]
    done = 0
    failed = 0
    rng = random.Random(7)
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            doc = await coll.find_one_and_update(
                {"_id": rng.randrange(DOCS), "quota": {"$gte": 1000}},
                {"$inc": {"quota": -1000, "version": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                failed += 1
            done += 1

    try:
        await coll.find_one({"_id": 0})  # connect before timing
        start = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(tasks)))
        elapsed = time.perf_counter() - start
    finally:
        await client.close()
    return done / elapsed, failed


def measure(kind: str, seconds: float) -> dict[str, object]:
    db = embedded.start(None, prefer=kind)
    try:
        asyncio.run(_seed(db.uri))
        out: dict[str, object] = {"server": f"secantusd-{'rs' if kind == 'rust' else 'py'}"}
        for label, tasks in (("sequential", 1), (f"{CONCURRENCY} concurrent", CONCURRENCY)):
            rates = []
            for _ in range(REPETITIONS):
                rate, failed = asyncio.run(_run(db.uri, tasks, seconds))
                if failed:
                    raise RuntimeError(f"{failed} conditional updates did not match")
                rates.append(rate)
            out[label] = (statistics.median(rates), rates)
        return out
    finally:
        db.stop()


def report(results: list[dict[str, object]], seconds: float) -> str:
    lines = [
        "## find_one_and_update rate (bench/db_rate.py)",
        "",
        f"Conditional `$inc` guarded by `$gte` on a {DOCS:,}-document collection, random "
        f"documents, {REPETITIONS} repetitions of {seconds:g} s each, median (all runs in "
        f"brackets). Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, client and server on the same host.",
        "",
        "| server | sequential ops/s | 16 concurrent ops/s |",
        "|---|---|---|",
    ]
    for r in results:
        seq = r["sequential"]
        par = r[f"{CONCURRENCY} concurrent"]
        assert isinstance(seq, tuple) and isinstance(par, tuple)
        lines.append(
            f"| {r['server']} | {seq[0]:,.0f} ({', '.join(f'{x:,.0f}' for x in seq[1])}) "
            f"| {par[0]:,.0f} ({', '.join(f'{x:,.0f}' for x in par[1])}) |")
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section in ``path`` (keeping everything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    head = "## find_one_and_update rate (bench/db_rate.py)"
    if head in text:
        before, _, rest = text.partition(head)
        nxt = rest.find("\n## ")
        after = rest[nxt + 1:] if nxt >= 0 else ""
        text = before + section + ("\n" + after if after else "")
    else:
        text = (text.rstrip() + "\n\n" if text else "") + section
    path.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--servers", default="rust,python")
    ap.add_argument("--out", type=Path, default=RESULTS_FILE)
    args = ap.parse_args()
    results = []
    for kind in args.servers.split(","):
        if kind == "rust" and embedded.rust_binary() is None:
            print("secantusd-rs is not built (nf db build); skipping it")
            continue
        results.append(measure(kind, args.seconds))
        print(report(results, args.seconds))
    write_section(args.out, report(results, args.seconds))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
