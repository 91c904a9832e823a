"""The export pipeline without a database: ``python -m bench.edr_pipeline --count 10000000``.

What ``nf edr export`` does after the database has answered -- BSON decoding (the driver's
C decoder, on documents encoded here), rows, Arrow batches, Parquet files, atomic moves --
fed by an in-process stand-in for the ``edrs`` collection that yields the same synthetic
EDRs as ``nf edr seed``, hour by hour. It bounds the export rate from above (the database
server's share is not in it) and leaves a full-size export to time the reports on. Prints
JSON: EDRs/s, peak RSS, export size, report latencies (median of ``--runs``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import bson

from nf.reports import queries
from nf.reports.export import HOUR, Exporter
from nf.reports.seed import _doc

BRANDS = ["lumen", "harbor", "cartwheel", "nimbus", "pebble", "orbit", "tidal", "sprout",
          "quarry"]
NETWORKS = [("northwind", "00101"), ("bluepeak", "00102"), ("redmoor", "999001")]


class _Cursor:
    def __init__(self, docs: list[bytes] | list[dict[str, Any]]) -> None:
        self._docs = docs

    def sort(self, *_a: Any) -> _Cursor:
        return self

    def limit(self, _n: int) -> _Cursor:
        return self

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        for d in self._docs:
            yield bson.decode(d) if isinstance(d, bytes) else d  # type: ignore[arg-type]


class _Edrs:
    """Answers the exporter's two kinds of ``find`` with generated hours."""

    def __init__(self, start: datetime, hours: int, per_hour: int) -> None:
        self.start, self.hours, self.per_hour = start, hours, per_hour
        self.rng = random.Random(1)
        self.n = 0
        self.gen_cpu_s = 0.0  # CPU spent making documents (not part of the export)

    def find(self, query: dict[str, Any], projection: Any = None, **_kw: Any) -> _Cursor:
        lo = query["time"]["$gte"]
        if projection is not None:  # the span probe: first and last hour
            return _Cursor([{"time": self.start}, {"time": self.start + (self.hours - 1) * HOUR}])
        docs = []
        c0 = time.process_time()
        for _ in range(self.per_hour):
            d = _doc(self.n, self.rng, lo, 3599.0, 1_000_000, BRANDS, NETWORKS, {})
            docs.append(bson.encode(d))
            self.n += 1
        self.gen_cpu_s += time.process_time() - c0
        return _Cursor(docs)


class _Db:
    def __init__(self, edrs: _Edrs) -> None:
        self.edrs = edrs

    def __getitem__(self, _name: str) -> _Edrs:
        return self.edrs


def _replicate(src: Path, k: int, stride_days: int) -> Path:
    dst = src.with_name(src.name + f"-x{k}")
    for f in src.rglob("part-*.parquet"):
        table, dayp, brandp, name = f.relative_to(src).parts
        d0 = date.fromisoformat(dayp.removeprefix("day="))
        for i in range(k):
            t = dst / table / f"day={d0 + timedelta(days=stride_days * i)}" / brandp / name
            t.parent.mkdir(parents=True, exist_ok=True)
            if not t.exists():
                os.link(f, t)
    return dst


async def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.edr_pipeline", description=__doc__)
    p.add_argument("--count", type=int, default=10_000_000)
    p.add_argument("--hours", type=int, default=240)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--replicate", type=int, default=1,
                   help="time the reports over the export repeated this many times in "
                        "later days (hard links): K x count EDRs without exporting them")
    a = p.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="nf-edr-pipeline-"))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    edrs = _Edrs(start, a.hours, a.count // a.hours)
    t0, c0 = time.monotonic(), time.process_time()
    stats = await Exporter(_Db(edrs), out).export(  # type: ignore[arg-type]
        start, start + a.hours * HOUR)
    dt = time.monotonic() - t0
    cpu = time.process_time() - c0 - edrs.gen_cpu_s
    res: dict[str, Any] = {
        "edrs": stats.edrs, "seconds": round(dt, 1), "edrs_per_s": round(stats.edrs / dt),
        "export_cpu_s": round(cpu, 1), "edrs_per_cpu_s": round(stats.edrs / cpu),
        "generation_cpu_s": round(edrs.gen_cpu_s, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "export_bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
        "files": stats.files_written, "load_avg": os.getloadavg(), "reports": {}}
    days = (a.hours + 23) // 24
    if a.replicate > 1:
        out = _replicate(out, a.replicate, days + 1)
    frm, to = date(2026, 11, 1), date(2026, 11, 1) + timedelta(days=(days + 1) * a.replicate)
    res["report_edrs"] = stats.edrs * a.replicate
    for name, fn in (("usage", queries.usage), ("caps", queries.caps),
                     ("uptake", queries.uptake), ("roaming", queries.roaming),
                     ("top", queries.top)):
        runs, cpus = [], []
        for _ in range(a.runs):
            t0, c0 = time.monotonic(), time.process_time()
            with queries.ReportDb(out) as db:
                rows = len(fn(db, frm, to).rows)
            runs.append(round(time.monotonic() - t0, 2))
            cpus.append(round(time.process_time() - c0, 2))
        res["reports"][name] = {"median_s": statistics.median(runs), "runs_s": runs,
                                "median_cpu_s": statistics.median(cpus), "rows": rows}
        print(json.dumps({name: res["reports"][name]}), file=sys.stderr, flush=True)
    res["peak_rss_mib_after_reports"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
