"""What durability costs: the ledger's conditional update, and the CHF's update through
the NF, with the embedded database fsyncing its log on every commit (``--sync-on-commit``,
the default) and without, in one run on the same host.

Part 1 (database alone, ``bench.db_rate``'s workload): ``find_one_and_update`` guarded by
``$gte``, sequential and 16 concurrent, for each server setting and each write concern
(``w:1`` and the NF's money-path ``w:majority, j:true``), median of 3 runs.

Part 2 (the NF, ``bench.chf_latency``): CHF update latency one at a time over HTTP/2
against ``nf serve``, with each server setting.

    python -m bench.durability [--seconds 3] [--requests 200] [--server rust|python]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys

from bench.db_rate import CONCURRENCY, REPETITIONS, _run, _seed
from nf.store import embedded

CONCERNS = {"w:1": "&w=1&journal=false", "w:majority, j:true": "&w=majority&journal=true"}


def db_part(kind: str, seconds: float) -> list[str]:
    rows = []
    for sync in (False, True):
        db = embedded.start(None, prefer=kind, durable=sync)
        try:
            asyncio.run(_seed(db.uri))
            for label, suffix in CONCERNS.items():
                cells = []
                for tasks in (1, CONCURRENCY):
                    rates = []
                    for _ in range(REPETITIONS):
                        rate, failed = asyncio.run(_run(db.uri + suffix, tasks, seconds))
                        assert failed == 0
                        rates.append(rate)
                    cells.append(f"{statistics.median(rates):,.0f} "
                                 f"({', '.join(f'{r:,.0f}' for r in rates)})")
                rows.append(f"| {'on' if sync else 'off'} | {label} | {cells[0]} | "
                            f"{cells[1]} |")
                print(rows[-1], flush=True)
        finally:
            db.stop()
    return rows


def nf_part(requests: int) -> list[str]:
    rows = []
    for sync in ("0", "1"):
        env = dict(os.environ, NF_DB_SYNC_ON_COMMIT=sync)
        out = subprocess.run([sys.executable, "-m", "bench.chf_latency", "--requests",
                              str(requests), "--rounds", "1"], env=env, capture_output=True,
                             text=True, check=True)
        lines = [ln.strip() for ln in out.stdout.splitlines() if ln.startswith("round")]
        rows.append(f"sync-on-commit {'on' if sync == '1' else 'off'}: " + "; ".join(lines))
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--server", default="rust" if embedded.rust_binary() else "python")
    ap.add_argument("--skip-nf", action="store_true")
    args = ap.parse_args()
    print(f"secantusd-{'rs' if args.server == 'rust' else 'py'}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("| sync-on-commit | write concern | sequential ops/s | 16 concurrent ops/s |")
    print("|---|---|---|---|")
    db_part(args.server, args.seconds)
    if not args.skip_nf:
        nf_part(args.requests)


if __name__ == "__main__":
    main()
