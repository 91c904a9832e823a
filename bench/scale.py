"""``python -m bench --scale`` (``make bench-scale``): the cost curve of the population.

For each population size (default 100,000 and 1,000,000; 10,000,000 on request) on a fresh
embedded database: seed the subscribers in bulk with the ledger's own function (rate and
progress shown), time the database's first read afterwards, measure the database on disk
(total, per subscriber, per index), restart the database and the NF and time how long
until they are ready, then run the standard session mix (``python -m bench`` defaults:
closed loop, 32 sessions, K = 5, 3 runs of 5 s warm-up + 20 s) while sampling the resident
memory of the NF and of the database. The report (``bench/results/scale-<time>.json``)
holds, per size, the same per-run structure as ``make bench`` plus the above; a chart of
throughput and p99 against population is written next to it (SVG).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench import chart, cpu, report
from bench.indexes import ensure_all
from bench.orchestrate import (
    BENCH_CONFIG,
    RESULTS,
    Nf,
    Options,
    build_loadgen,
    keep_logs,
    machine,
    run_loadgen,
    running_nf,
)
from bench.seed import MIB, _subscribers, layout, write_catalog
from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.ledger.mongo import COLLECTION, MongoLedger
from nf.store import embedded
from nf.store.mongo import make_client
from nf.store.opwatch import OpWatch

DATABASE = "nf_bench"
DEFAULT_SIZES = (100_000, 1_000_000)


def log(msg: str) -> None:
    print(f"bench-scale: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ScaleOptions:
    sizes: tuple[int, ...] = DEFAULT_SIZES
    run: Options = field(default_factory=Options)
    seed_concurrency: int = 2
    seed_processes: int = 1
    db_cache: str = "1G"
    data_dir: Path | None = None  # keep (and reuse) each size's database under here
    index_stats_max: int = 2_000_000  # collStats reads every document: not beyond this
    out: Path | None = None


class Progress:
    """One line every ``every_s`` seconds on stderr: done/total, rate, time left."""

    def __init__(self, what: str, total: int, every_s: float = 5.0) -> None:
        self.what, self.total, self.every_s = what, total, every_s
        self.t0 = self.last = time.monotonic()

    def __call__(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        el = now - self.t0
        rate = done / el if el > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else float("inf")
        pct = 100 * done / self.total if self.total else 100.0
        log(f"{self.what}: {done:,}/{self.total:,} ({pct:.0f}%), {rate:,.0f}/s, "
            f"{el:.0f} s elapsed" + (f", ~{left:.0f} s left" if done < self.total else ""))


# ------------------------------------------------------------------------------- seeding

def split_groups(groups: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    """Each group cut into ``parts`` consecutive ranges; part ``i`` gets the ``i``-th range
    of every group (so each seeding process writes a share of every network and plan)."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(parts)]
    for g in groups:
        base, extra = divmod(int(g["count"]), parts)
        first = int(g["first"])
        for i in range(parts):
            count = base + (1 if i < extra else 0)
            if count:
                out[i].append({**g, "first": first, "count": count})
            first += count
    return out


async def _write(settings: Settings, groups: list[dict[str, Any]], concurrency: int,
                 now: datetime, done: Callable[[int], None]) -> int:
    """Create the subscribers of ``groups`` with ``concurrency`` bulk writers, calling
    ``done`` with each batch's count; returns how many were created."""
    assert settings.catalog_dir is not None
    # Bulk loads are slow by nature: no slow-operation lines from this client.
    client = make_client(settings, OpWatch(slow_ms=600_000))
    created = 0
    try:
        ledger = MongoLedger(client[settings.mongodb_database], settings,
                             CatalogHolder.from_dir(settings.catalog_dir))
        subs = _subscribers(groups)

        async def writer() -> None:
            nonlocal created
            while chunk := list(islice(subs, 5000)):
                got = await ledger.bulk_create_subscribers(chunk, now)
                created += got  # after the await: the writers share this counter
                done(got)

        async with asyncio.TaskGroup() as tg:
            for _ in range(max(1, concurrency)):
                tg.create_task(writer())
    finally:
        await client.close()
    return created


def _seed_process(settings: Settings, groups: list[dict[str, Any]], concurrency: int,
                  now: datetime, counter: Any) -> None:
    """One seeding process (started with ``spawn``): its share, counted in ``counter``."""

    def done(k: int) -> None:
        with counter.get_lock():
            counter.value += k

    asyncio.run(_write(settings, groups, concurrency, now, done))


async def seed(settings: Settings, n: int, small_cap_share: float, small_cap_bytes: int,
               concurrency: int, processes: int = 1
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create ``n`` subscribers with ``concurrency`` bulk writers in each of ``processes``
    processes (building the documents costs a core per process); (population, timing)."""
    assert settings.catalog_dir is not None
    groups = layout(settings, n, small_cap_share, small_cap_bytes)
    client = make_client(settings, OpWatch(slow_ms=600_000))
    try:
        await ensure_all(settings, client[settings.mongodb_database])
    finally:
        await client.close()
    progress = Progress("seeding", n)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    if processes <= 1:
        total = [0]

        def done(k: int) -> None:
            total[0] += k
            progress(total[0])

        created = await _write(settings, groups, concurrency, now, done)
    else:
        ctx = multiprocessing.get_context("spawn")
        counter = ctx.Value("q", 0)
        procs = [ctx.Process(target=_seed_process, args=(settings, part, concurrency, now,
                                                         counter), daemon=True)
                 for part in split_groups(groups, processes)]
        for pr in procs:
            pr.start()
        try:
            while any(pr.is_alive() for pr in procs):
                progress(counter.value)
                await asyncio.sleep(0.5)
        finally:
            for pr in procs:
                if pr.is_alive():
                    pr.terminate()
                pr.join()
        failed = [pr.exitcode for pr in procs if pr.exitcode != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} seeding process(es) failed (exit {failed})")
        created = int(counter.value)
    seconds = time.perf_counter() - t0
    progress(created, force=True)
    if created != n:
        raise RuntimeError(f"seeding created {created} subscribers, expected {n}")
    return {"groups": groups}, {
        "subscribers": created, "seconds": round(seconds, 1),
        "per_s": round(created / seconds) if seconds else None, "concurrency": concurrency,
        "processes": processes, "small_cap": sum(g["count"] for g in groups if g["cap_bytes"]),
        "function": "MongoLedger.bulk_create_subscribers"}


def population_supis(groups: list[dict[str, Any]]) -> Iterator[str]:
    for g in groups:
        for i in range(g["first"], g["first"] + g["count"]):
            yield f"{g['supi_prefix']}{i:0{g['digits']}d}"


def random_supis(groups: list[dict[str, Any]], k: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(k):
        g = rng.choices(groups, weights=[g["count"] for g in groups])[0]
        i = rng.randrange(g["first"], g["first"] + g["count"])
        out.append(f"{g['supi_prefix']}{i:0{g['digits']}d}")
    return out


def timed_reads(uri: str, supis: list[str], timeout_s: float) -> dict[str, Any]:
    """Read each SUPI's wallet by ``_id`` with a generous timeout; the first read's time,
    and the median and max of the others (a slow first read is waited for, with
    progress)."""
    times: list[float] = []
    client: MongoClient[dict[str, Any]]
    with MongoClient(uri, serverSelectionTimeoutMS=int(timeout_s * 1000),
                     socketTimeoutMS=int(timeout_s * 1000)) as client:
        col = client[DATABASE][COLLECTION]
        for s in supis:
            done = threading.Event()
            t0 = time.perf_counter()

            def tick(t0: float = t0, done: threading.Event = done) -> None:
                while not done.wait(5.0):
                    log(f"waiting for the database's read ({time.perf_counter() - t0:.0f} s)")

            th = threading.Thread(target=tick, daemon=True)
            th.start()
            try:
                if col.find_one({"_id": s}) is None:
                    raise RuntimeError(f"seeded subscriber {s} is not found")
            finally:
                done.set()
            times.append(time.perf_counter() - t0)
    rest = sorted(times[1:])
    return {"first_s": round(times[0], 3),
            "others_median_ms": round(1000 * rest[len(rest) // 2], 2) if rest else None,
            "others_max_ms": round(1000 * rest[-1], 2) if rest else None,
            "reads": len(times)}


# ------------------------------------------------------------------------ disk and memory

def disk_usage(path: Path) -> dict[str, Any]:
    """Bytes allocated on disk under ``path``, in total and for its largest files."""
    files: dict[str, int] = {}
    total = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            p = Path(root) / name
            try:
                st = p.stat()
            except OSError:
                continue
            used = st.st_blocks * 512
            total += used
            files[str(p.relative_to(path))] = used
    big = dict(sorted(files.items(), key=lambda kv: -kv[1])[:12])
    return {"bytes": total, "largest_files": big}


def index_sizes(uri: str) -> dict[str, Any]:
    """Index sizes as the server reports them (``collStats.indexSizes``: key bytes)."""
    try:
        client: MongoClient[dict[str, Any]]
        with MongoClient(uri, serverSelectionTimeoutMS=5000, socketTimeoutMS=600_000) as client:
            st = client[DATABASE].command("collStats", COLLECTION)
    except PyMongoError as e:
        return {"error": str(e)[:200]}
    return {"count": st.get("count"), "data_bytes": st.get("size"),
            "index_bytes": dict(st.get("indexSizes") or {}),
            "index_bytes_total": st.get("totalIndexSize")}


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    total = 0
    for p in cpu.tree(pid):
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total


class RssSampler:
    """Peak and last resident memory of labelled process trees, sampled every second."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.peak: dict[str, int] = dict.fromkeys(roots, 0)
        self.last: dict[str, int] = dict.fromkeys(roots, 0)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            for k, pid in self.roots.items():
                v = rss_bytes(pid)
                self.last[k] = v
                self.peak[k] = max(self.peak[k], v)
            if self._stop.wait(1.0):
                return

    def __enter__(self) -> RssSampler:
        self._t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._t.join(5)

    def mib(self) -> dict[str, Any]:
        return {f"{k}_peak_mib": round(v / 2**20, 1) for k, v in self.peak.items()} | {
            f"{k}_last_mib": round(v / 2**20, 1) for k, v in self.last.items()}


# ---------------------------------------------------------------------------- one size

def start_db(storage: Path, opts: ScaleOptions, logfile: Path) -> embedded.EmbeddedDb:
    return embedded.start(storage, prefer=opts.run.db, log=logfile,
                          cache_size=opts.db_cache, startup_timeout_s=600)


def one_size(n: int, opts: ScaleOptions, workdir: Path) -> dict[str, Any]:
    ropts = opts.run
    out: dict[str, Any] = {"subscribers": n}
    logdir = workdir / f"size-{n}"
    logdir.mkdir(parents=True, exist_ok=True)
    storage = (opts.data_dir or workdir) / f"db-{n}"
    cross_at = max(1, (ropts.updates + 1) // 2)
    cap_mb = max(1, -(-ropts.usage_bytes * cross_at // MIB))
    catalog = write_catalog(logdir / "catalog", cap_mb)
    seeded_marker = storage / "seeded.json"
    db = start_db(storage, opts, logdir / "db.log")
    try:
        settings = Settings.load(BENCH_CONFIG, mongodb_uri=db.uri, mongodb_database=DATABASE,
                                 catalog_dir=catalog, mongodb_timeout_ms=120_000)
        if seeded_marker.is_file():
            pop = json.loads(seeded_marker.read_text())
            out["seed"] = {**pop["seed"], "reused": str(storage)}
            log(f"{n:,}: reusing the database seeded in {storage}")
        else:
            log(f"{n:,}: seeding ({ropts.small_cap_share:.0%} on a {cap_mb} MiB cap, "
                f"{opts.seed_concurrency} bulk writers in each of {opts.seed_processes} "
                f"process(es))")
            pop, info = asyncio.run(seed(settings, n, ropts.small_cap_share, cap_mb * MIB,
                                         opts.seed_concurrency, opts.seed_processes))
            out["seed"] = info
            seeded_marker.write_text(json.dumps({**pop, "seed": info}))
        groups = pop["groups"]
        rng = random.Random(n)
        log(f"{n:,}: the database's first reads after the load")
        out["seed"]["first_reads"] = timed_reads(db.uri, random_supis(groups, 20, rng), 900)
        log(f"{n:,}: first read {out['seed']['first_reads']['first_s']} s")
        out["indexes"] = index_sizes(db.uri) if n <= opts.index_stats_max else {
            "skipped": "collStats reads every document into the server's memory"}
        log(f"{n:,}: restarting the database")
        t0 = time.monotonic()
        db.stop(timeout_s=900)
        stop_s = time.monotonic() - t0
        disk = disk_usage(storage)
        out["disk"] = {**disk, "bytes_per_subscriber": round(disk["bytes"] / n, 1),
                       "mib": round(disk["bytes"] / 2**20, 1)}
        t0 = time.monotonic()
        db = start_db(storage, opts, logdir / "db.log")
        listen_s = time.monotonic() - t0
        reads = timed_reads(db.uri, random_supis(groups, 20, rng), 900)
        out["restart"] = {"db_stop_s": round(stop_s, 2), "db_listen_s": round(listen_s, 2),
                          "db_first_read_s": reads["first_s"],
                          "db_read_median_ms": reads["others_median_ms"]}
        population = logdir / "population.json"
        population.write_text(json.dumps({"groups": groups}))
        t0 = time.monotonic()
        with running_nf(ropts, db.uri, DATABASE, logdir, catalog) as nf:
            out["restart"]["nf_ready_s"] = round(time.monotonic() - t0, 2)
            log(f"{n:,}: NF ready in {out['restart']['nf_ready_s']} s")
            out["runs"] = measure(ropts, nf, db, population, logdir, n)
        out["median"] = report.medians([r["summary"] for r in out["runs"]])
    finally:
        db.stop(timeout_s=900)
        if opts.data_dir is None:
            shutil.rmtree(storage, ignore_errors=True)
    return out


def measure(ropts: Options, nf: Nf, db: embedded.EmbeddedDb, population: Path,
            logdir: Path, n: int) -> list[dict[str, Any]]:
    runs = []
    roots = {"nf": nf.proc.pid, "db": db.process.pid}
    for i in range(ropts.repeat):
        log(f"{n:,}: run {i + 1}/{ropts.repeat}: load generator ({ropts.mode} loop)")
        with RssSampler(roots) as rss:
            load, used, dbops = run_loadgen(ropts, [nf], population, i, ropts.repeat,
                                            {k: [v] for k, v in roots.items()},
                                            logdir / f"load-{i}.json", db.uri)
        one: dict[str, Any] = {"index": i, "load": load, "cpu": used, "db_ops": dbops,
                               "rss": rss.mib()}
        s = report.run_summary(load, None, used)
        s["db_ops_per_nf_request"] = dbops.get("per_nf_request")
        s["db_ops_per_s"] = dbops.get("per_s")
        s.update(rss.mib())
        one["summary"] = s
        runs.append(one)
    return runs


# --------------------------------------------------------------------------- the curve

CURVE_KEYS = ("chf_update_per_s", "chf_update.p50_ms", "chf_update_p99_ms", "ops_per_s_total",
              "requests_per_nf_cpu_s", "db_ops_per_nf_request", "throttle_p50_ms",
              "throttle_p99_ms", "nf_peak_mib", "db_peak_mib", "nf_cpu_pct_all_cores",
              "db_cpu_pct_all_cores", "others_cpu_pct_all_cores", "errors_total",
              "throttle_missing")


def curve(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per population size: the headline numbers of the report."""
    rows = []
    for s in sizes:
        med = s.get("median", {})
        row: dict[str, Any] = {"subscribers": s["subscribers"]}
        row.update({k: med.get(k) for k in CURVE_KEYS})
        seed_ = s.get("seed", {})
        row["seed_per_s"] = seed_.get("per_s")
        row["first_read_s"] = (seed_.get("first_reads") or {}).get("first_s")
        disk = s.get("disk", {})
        row["disk_mib"] = disk.get("mib")
        row["disk_bytes_per_subscriber"] = disk.get("bytes_per_subscriber")
        idx = s.get("indexes", {})
        row["index_bytes_total"] = idx.get("index_bytes_total")
        rs = s.get("restart", {})
        row["restart_ready_s"] = (round(sum(float(rs.get(k) or 0) for k in
                                            ("db_listen_s", "db_first_read_s", "nf_ready_s")),
                                        2) if rs else None)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    cols = [("subscribers", "subscribers", "{:,.0f}"), ("seed_per_s", "seed/s", "{:,.0f}"),
            ("first_read_s", "1st read s", "{:.2f}"), ("disk_mib", "disk MiB", "{:,.0f}"),
            ("disk_bytes_per_subscriber", "B/sub", "{:,.0f}"),
            ("restart_ready_s", "ready s", "{:.1f}"), ("chf_update_per_s", "upd/s", "{:.0f}"),
            ("chf_update.p50_ms", "p50 ms", "{:.1f}"), ("chf_update_p99_ms", "p99 ms", "{:.1f}"),
            ("db_ops_per_nf_request", "dbops/req", "{:.2f}"),
            ("throttle_p99_ms", "thr p99", "{:.0f}"), ("nf_peak_mib", "NF MiB", "{:.0f}"),
            ("db_peak_mib", "DB MiB", "{:.0f}"), ("errors_total", "errors", "{:.0f}")]
    head = "".join(f"{h:>12}" for _, h, _ in cols)
    lines = [head]
    for r in rows:
        lines.append("".join(f"{(f.format(r[k]) if r.get(k) is not None else '-'):>12}"
                             for k, _, f in cols))
    return "\n".join(lines)


def run(opts: ScaleOptions) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="nf-scale-"))
    rep: dict[str, Any] = {
        "kind": "scale", "label": f"population scale, {opts.run.mode} loop",
        "started_at": stamp, "machine": machine(), "cores": os.cpu_count(),
        "options": {"sizes": list(opts.sizes), "seed_concurrency": opts.seed_concurrency,
                    "seed_processes": opts.seed_processes,
                    "db_cache": opts.db_cache,
                    "run": {k: (str(v) if isinstance(v, Path) else v)
                            for k, v in opts.run.__dict__.items()}},
        "window_s": opts.run.duration_s, "sizes": []}
    out = opts.out or RESULTS / f"scale-{stamp}.json"
    log(f"building the load generator; report will be {out}")
    rep["go_build_s"] = build_loadgen()
    try:
        for n in opts.sizes:
            t0 = time.monotonic()
            got = one_size(n, opts, workdir)
            got["wall_s"] = round(time.monotonic() - t0, 1)
            rep["sizes"].append(got)
            rep["curve"] = curve(rep["sizes"])
            out.write_text(json.dumps(rep, indent=2) + "\n")  # partial results survive
            log(f"{n:,} done in {got['wall_s']:.0f} s")
    finally:
        rep["finished_at"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        rep["logs"] = str(keep_tree(workdir, RESULTS / f"scale-{stamp}"))
        shutil.rmtree(workdir, ignore_errors=True)
        rep["curve"] = curve(rep["sizes"])
        out.write_text(json.dumps(rep, indent=2) + "\n")
    svg = out.with_suffix(".svg")
    svg.write_text(chart.svg(rep["curve"], title="CHF updates/s and p99 against population"))
    print(table(rep["curve"]))
    print(f"report: {out}\nchart: {svg}")
    return rep


def keep_tree(workdir: Path, dest: Path) -> Path:
    """Copy every size's logs and raw results (not its database) next to the report."""
    dest.mkdir(parents=True, exist_ok=True)
    keep_logs(workdir, dest)
    for sub in workdir.iterdir():
        if sub.is_dir() and sub.name.startswith("size-"):
            keep_logs(sub, dest / sub.name)
    return dest


def parse(argv: list[str]) -> ScaleOptions:
    d = Options()
    p = argparse.ArgumentParser(
        prog="python -m bench --scale",
        description="The standard session mix at several population sizes (see "
                    "BENCHMARKS.md, 'Population scale').")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                   help="population sizes (default %(default)s; 10000000 takes ~30-60 min "
                        "more here, most of it seeding)")
    p.add_argument("--seed-concurrency", type=int, default=2,
                   help="concurrent bulk writers while seeding (default %(default)s)")
    p.add_argument("--seed-processes", type=int, default=1,
                   help="seeding processes, each with its bulk writers (default %(default)s; "
                        "building the documents takes a core per process)")
    p.add_argument("--db-cache", default="1G",
                   help="the embedded database's cache (default %(default)s)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="keep each size's database under DIR/db-<size> and reuse it on the "
                        "next run (default: a temporary directory, removed)")
    p.add_argument("--repeat", type=int, default=d.repeat)
    p.add_argument("--duration", type=float, default=d.duration_s)
    p.add_argument("--warmup", type=float, default=d.warmup_s)
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--db", choices=("rust", "auto", "python"), default=d.db)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    if any(n < 3 for n in a.sizes) or a.repeat < 1 or not 0 < a.duration <= 3600 \
            or not 1 <= a.seed_processes <= 64:
        p.error("sizes must be >= 3, --repeat >= 1, --duration within (0, 3600], "
                "--seed-processes within [1, 64]")
    run_opts = replace(d, repeat=a.repeat, duration_s=a.duration, warmup_s=a.warmup,
                       concurrency=a.concurrency, workers=a.workers, db=a.db, ceiling=False)
    return ScaleOptions(sizes=tuple(a.sizes), run=run_opts,
                        seed_concurrency=a.seed_concurrency,
                        seed_processes=a.seed_processes, db_cache=a.db_cache,
                        data_dir=a.data_dir, out=a.out)


def combine(reports: list[Path], out: Path) -> dict[str, Any]:
    """One curve (report and SVG chart) from the sizes of several earlier reports, e.g. a
    100,000 and 1,000,000 run and a separate 10,000,000 run; a size measured twice keeps
    its latest report. Each size keeps the name of the report it came from."""
    by_size: dict[int, dict[str, Any]] = {}
    for path in reports:
        try:
            rep = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"bench-scale: cannot read {path}: {e}") from None
        if rep.get("kind") != "scale":
            raise SystemExit(f"bench-scale: {path} is not a population-scale report")
        for size in rep.get("sizes", []):
            by_size[int(size["subscribers"])] = {**size, "report": path.name}
    sizes = [by_size[n] for n in sorted(by_size)]
    combined: dict[str, Any] = {
        "kind": "scale", "label": "population scale, combined",
        "combined_from": [str(p) for p in reports], "sizes": sizes, "curve": curve(sizes)}
    out.write_text(json.dumps(combined, indent=2) + "\n")
    svg = out.with_suffix(".svg")
    svg.write_text(chart.svg(combined["curve"],
                             title="CHF updates/s and p99 against population"))
    print(table(combined["curve"]))
    print(f"report: {out}\nchart: {svg}")
    return combined


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--combine"]:
        if len(args) < 3:
            print("usage: python -m bench --scale --combine OUT.json REPORT.json...",
                  file=sys.stderr)
            return 2
        combine([Path(a) for a in args[2:]], Path(args[1]))
        return 0
    rep = run(parse(args))
    errors = sum(int(r.get("errors_total") or 0) for r in rep["curve"])
    return 0 if errors == 0 and len(rep["sizes"]) == len(rep["options"]["sizes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
