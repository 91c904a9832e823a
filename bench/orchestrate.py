"""One benchmark end to end: build the load generator, start the embedded database
(SecantusDB's Rust server), seed the population in bulk, start ``nf serve``, then per
repeated run measure the ceiling (h2load on ``GET /healthz``) and the NF (the load
generator), sample CPU from /proc over each window, and write the report.

With ``interface="diameter"`` the NF also serves Diameter (its PGWs allowed per host
network) and the load is ``bench.diameter_load``'s Gx + Gy sessions instead of the SBI's
(no h2load ceiling, no warm-update probe: both are SBI measurements); the CPU, database and
report accounting are the same, per CCR instead of per SBI request.

Everything started here is stopped here, by process id, whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench import cpu, h2load, profile, report, warm_ops
from bench.seed import MIB, seed_population, write_catalog
from nf.config import Settings
from nf.settings.fraud import FraudSettings
from nf.store import embedded

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOADGEN_SRC = HERE / "loadgen"
LOADGEN_BIN = LOADGEN_SRC / "loadgen"
RESULTS = HERE / "results"
BENCH_CONFIG = HERE / "nf-bench.yaml"
# As long as the NF's own ``mongodb_startup_timeout_s`` (default), and a little more.
NF_READY_TIMEOUT_S = 960.0
# The NF's Diameter identity in the Diameter mode, and its PGWs' names per host network.
DIAMETER_HOST = "ocs.bench.test"
DIAMETER_REALM = "bench.test"


@dataclass(frozen=True)
class Options:
    subscribers: int = 100_000
    small_cap_share: float = 0.1
    workers: int = 1  # measured: as much throughput as 2 on 2 cores, shorter tails (BENCHMARKS.md)
    server: str = "granian"
    conns: int = 4
    streams: int = 64
    mode: str = "closed"
    mix: str = "full"
    concurrency: int = 32
    rate: float = 400.0
    updates: int = 5
    usage_bytes: int = 1 << 20
    think_s: float = 0.0
    duration_s: float = 20.0
    warmup_s: float = 5.0
    repeat: int = 3
    ceiling: bool = True
    ceiling_duration_s: float = 10.0
    profile: bool = False
    warm_probe: bool = True
    label: str = ""
    out: Path | None = None
    db: str = "rust"
    # NF instances (separate `nf serve` processes on their own ports, one database); the
    # load generator spreads its connections over them.
    instances: int = 1
    # Fraud protection in the NF: "on" (the NF's default), "off", or "compare": each
    # repeat runs once with it off and once on (alternating which goes first), each on a
    # freshly started NF, and the report gives both medians and the throughput ratio.
    fraud: str = "on"
    # "sbi": SMFs over HTTP/2 (bench/loadgen); "diameter": PGWs over Diameter Gx + Gy
    # (bench/diameter_load.py), ``conns`` PGW connections spread over the host networks.
    interface: str = "sbi"


def pgw_layout(settings: Settings, conns: int) -> list[dict[str, Any]]:
    """The Diameter mode's PGWs: ``conns`` of them spread over the host networks (at
    least one each), each network's under a realm of its own."""
    nets = settings.networks
    per = max(1, -(-conns // len(nets)))
    return [{"network": n.id, "realm": f"epc.{n.id}.bench.test",
             "hosts": [f"pgw{i + 1}.{n.id}.bench.test" for i in range(per)]} for n in nets]


def diameter_env(port: int, layout: list[dict[str, Any]], concurrency: int) -> dict[str, str]:
    return {
        "NF_DIAMETER__ENABLED": "true",
        "NF_DIAMETER__HOST": "127.0.0.1",
        "NF_DIAMETER__PORT": str(port),
        "NF_DIAMETER__ORIGIN_HOST": DIAMETER_HOST,
        "NF_DIAMETER__ORIGIN_REALM": DIAMETER_REALM,
        "NF_DIAMETER__NETWORKS": json.dumps({
            n["network"]: {"realms": [n["realm"]], "peers": n["hosts"]} for n in layout}),
        # Every session of a PGW may be in flight at once: never 3004 for the load itself.
        "NF_DIAMETER__MAX_INFLIGHT_PER_CONNECTION": str(max(256, 2 * concurrency)),
    }


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def build_loadgen() -> float:
    """``go build`` the load generator; returns the seconds it took."""
    go = shutil.which("go") or ("/usr/local/go/bin/go"
                                if Path("/usr/local/go/bin/go").is_file() else None)
    if go is None:
        raise RuntimeError("the load generator needs Go (>= 1.26) on PATH")
    t0 = time.monotonic()
    res = subprocess.run([go, "build", "-o", str(LOADGEN_BIN), "."], cwd=LOADGEN_SRC,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"go build failed:\n{res.stdout}{res.stderr}")
    return round(time.monotonic() - t0, 2)


def machine() -> dict[str, Any]:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kb / 2**20, 1),
            "kernel": os.uname().release, "python": sys.version.split()[0],
            "loadavg_at_start": os.getloadavg()}


@dataclass
class Nf:
    proc: subprocess.Popen[bytes]
    sbi: str
    oam: str
    log: Path
    diameter_port: int | None = None

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            # Its own session: this group is the NF's processes only.
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def nf_env(opts: Options, db_uri: str, database: str, sbi: int, oam: int,
           catalog: Path, fraud: str = "on", diameter: dict[str, str] | None = None
           ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({
        "NF_CONFIG": str(BENCH_CONFIG),
        "NF_MONGODB_URI": db_uri,
        "NF_MONGODB_DATABASE": database,
        "NF_CATALOG_DIR": str(catalog),
        "NF_SERVER__SBI_PORT": str(sbi),
        "NF_SERVER__OAM_PORT": str(oam),
        "NF_SERVER__SERVER": opts.server,
        "NF_SERVER__WORKERS": str(opts.workers),
        "NF_FRAUD__ENABLED": "false" if fraud == "off" else "true",
    })
    env.update(diameter or {})
    return env


@contextmanager
def running_nf(opts: Options, db_uri: str, database: str, logdir: Path, catalog: Path,
               index: int = 0, fraud: str = "on") -> Iterator[Nf]:
    sbi, oam = embedded.free_port(), embedded.free_port()
    dia_port: int | None = None
    dia_env: dict[str, str] | None = None
    if opts.interface == "diameter":
        dia_port = embedded.free_port()
        layout = pgw_layout(Settings.load(BENCH_CONFIG), opts.conns)
        dia_env = diameter_env(dia_port, layout, opts.concurrency)
    logfile = logdir / ("nf.log" if index == 0 else f"nf-{index}.log")
    with open(logfile, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nf.cli", "serve"],
                                env=nf_env(opts, db_uri, database, sbi, oam, catalog, fraud,
                                           dia_env),
                                cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    nf = Nf(proc, f"http://127.0.0.1:{sbi}", f"http://127.0.0.1:{oam}", logfile, dia_port)
    try:
        # A large database just restarted makes the NF's start slow (index checks, the
        # warm-up; it logs what it waits for): wait as long as the NF itself would.
        t0 = time.monotonic()
        deadline = t0 + NF_READY_TIMEOUT_S
        said = t0
        while True:
            if proc.poll() is not None:
                tail = logfile.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"nf serve exited with {proc.returncode}; the end of "
                                   f"{logfile}:\n" + "\n".join(tail))
            # Ready means the OAM port says so AND the SBI port answers (two processes).
            if _ok(nf.oam + "/readyz") and _ok(nf.sbi + "/healthz", h2c=True) and (
                    dia_port is None or _listening(dia_port)):
                break
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"nf serve not ready in {NF_READY_TIMEOUT_S:.0f} s; "
                                   f"see {logfile}")
            if now - said >= 10:
                said = now
                log(f"waiting for nf serve to be ready ({now - t0:.0f} s; its log: {logfile})")
            time.sleep(0.2)
        yield nf
    finally:
        nf.stop()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _ok(url: str, h2c: bool = False) -> bool:
    try:
        with httpx.Client(http1=not h2c, http2=h2c, timeout=1) as c:
            return c.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def sbi_worker_pids(root: int) -> list[int]:
    """The processes of the SBI server that serve requests (Granian's workers, or the
    Hypercorn process), busiest first is not known yet: all candidates."""
    procs = cpu.tree(root)
    sbi = [p for p in procs if "nf.sbi.runner sbi" in p.cmdline]
    ppids = {p.pid for p in sbi}
    workers = [p.pid for p in sbi if _ppid(p.pid) in ppids]
    return workers or [p.pid for p in sbi]


def diameter_pids(root: int) -> list[int]:
    """The NF's Diameter process (``nf.diameter_process``), if it runs."""
    return [p.pid for p in cpu.tree(root) if "nf.diameter_process" in p.cmdline]


def _ppid(pid: int) -> int:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(raw.rpartition(")")[2].split()[1])


def db_opcounters(uri: str) -> dict[str, int]:
    """The database server's operation counters (``serverStatus.opcounters``), or {}."""
    try:
        client: MongoClient[dict[str, Any]]
        with MongoClient(uri, serverSelectionTimeoutMS=2000, timeoutMS=5000) as client:
            got = client.admin.command("serverStatus").get("opcounters", {})
    except PyMongoError:
        return {}
    return {k: int(v) for k, v in got.items() if isinstance(v, int)}


def db_ops(before: dict[str, int], after: dict[str, int], seconds: float,
           nf_requests: int) -> dict[str, Any]:
    """Database operations over a window: by kind, per second, per NF request."""
    if not before or not after:
        return {}
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    total = sum(diff.values())
    return {"by_kind": diff, "total": total,
            "per_s": round(total / seconds, 1) if seconds > 0 else None,
            "per_nf_request": round(total / nf_requests, 2) if nf_requests else None}


def sbi_cmd(opts: Options, nfs: list[Nf], population: Path, part: int, parts: int,
            out: Path) -> list[str]:
    return [str(LOADGEN_BIN), "-target", ",".join(n.sbi for n in nfs),
            "-mode", opts.mode, "-mix", opts.mix,
            "-conns", str(opts.conns), "-streams", str(opts.streams),
            "-concurrency", str(opts.concurrency), "-rate", str(opts.rate),
            "-duration", f"{opts.duration_s}s", "-warmup", f"{opts.warmup_s}s",
            "-updates", str(opts.updates), "-usage-bytes", str(opts.usage_bytes),
            "-request-bytes", str(opts.usage_bytes), "-think", f"{opts.think_s}s",
            "-population", str(population), "-part", str(part), "-parts", str(parts),
            "-seed", str(part + 1), "-out", str(out)]


def diameter_cmd(opts: Options, nf: Nf, population: Path, part: int, parts: int,
                 out: Path) -> list[str]:
    """The Diameter load generator against the NF's Diameter port: the same population,
    part, session rhythm and window as the SBI's."""
    assert nf.diameter_port is not None
    layout = pgw_layout(Settings.load(BENCH_CONFIG), opts.conns)
    return [sys.executable, "-m", "bench.diameter_load", "--port", str(nf.diameter_port),
            "--pgws", json.dumps(layout), "--dest-realm", DIAMETER_REALM,
            "--population", str(population), "--part", str(part), "--parts", str(parts),
            "--seed", str(part + 1), "--concurrency", str(opts.concurrency),
            "--updates", str(opts.updates), "--usage-bytes", str(opts.usage_bytes),
            "--request-bytes", str(opts.usage_bytes), "--think", str(opts.think_s),
            "--duration", str(opts.duration_s), "--warmup", str(opts.warmup_s),
            "--out", str(out)]


def run_loadgen(opts: Options, nfs: list[Nf], population: Path, part: int, parts: int,
                roots: dict[str, list[int]], out: Path, db_uri: str,
                on_window: Callable[[], None] | None = None,
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Run the load generator; returns (its result, CPU used over its window, database
    operations over its window). ``on_window`` is called when the window begins."""
    cmd = (diameter_cmd(opts, nfs[0], population, part, parts, out)
           if opts.interface == "diameter" else sbi_cmd(opts, nfs, population, part, parts, out))
    samples: dict[str, tuple[float, dict[str, list[cpu.ProcTimes]]]] = {}
    counters: dict[str, dict[str, int]] = {}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    roots = {**roots, "loadgen": [proc.pid]}

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "window begins" in line:
                samples["from"] = (time.monotonic(), cpu.snapshot(roots))
                counters["from"] = db_opcounters(db_uri)
                if on_window is not None:
                    on_window()
            elif "window ends" in line:
                samples["to"] = (time.monotonic(), cpu.snapshot(roots))
                counters["to"] = db_opcounters(db_uri)
            sys.stderr.write(line)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    limit = opts.warmup_s + opts.duration_s + 120
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the load generator did not stop within {limit} s") from None
    finally:
        if proc.poll() is None:  # timed out, or we are being interrupted
            proc.kill()
            proc.wait()
        t.join(5)
        if proc.stderr is not None:
            proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode})")
    result = json.loads(out.read_text())
    used: dict[str, Any] = {}
    dbops: dict[str, Any] = {}
    if "from" in samples and "to" in samples:
        window = samples["to"][0] - samples["from"][0]
        used = cpu.usage(samples["from"][1], samples["to"][1], window)
        requests = sum(int(o.get("count", 0)) for o in result.get("ops", {}).values())
        dbops = db_ops(counters.get("from", {}), counters.get("to", {}), window, requests)
    return result, used, dbops


def ceiling_streams(opts: Options) -> int:
    """Concurrent streams per connection the load generator actually keeps open: the
    closed loop's sessions spread over the connections (at most ``streams``)."""
    if opts.mode == "closed":
        return max(1, min(opts.streams, -(-opts.concurrency // opts.conns)))
    return opts.streams


def ceiling(opts: Options, exe: str, nf: Nf, roots: dict[str, list[int]]) -> dict[str, Any]:
    warm = min(2.0, opts.ceiling_duration_s / 5)
    streams = ceiling_streams(opts)
    before, t0 = cpu.snapshot(roots), time.monotonic()
    res, _raw = h2load.run(exe, nf.sbi + "/healthz", conns=opts.conns, streams=streams,
                           duration_s=opts.ceiling_duration_s, warmup_s=warm)
    used = cpu.usage(before, cpu.snapshot(roots), time.monotonic() - t0)
    return {**res.as_dict(), "cpu": used,
            "command": " ".join(h2load.command("h2load", nf.sbi + "/healthz",
                                               conns=opts.conns, streams=streams,
                                               duration_s=opts.ceiling_duration_s,
                                               warmup_s=warm))}


def run(opts: Options) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="nf-bench-"))
    diameter = opts.interface == "diameter"
    rep: dict[str, Any] = {
        "label": opts.label or f"{opts.mode} loop, {opts.workers} SBI worker(s)"
                 + (f", {opts.instances} NF instances" if opts.instances > 1 else "")
                 + (", Diameter Gx + Gy" if diameter else ""),
        "interface": opts.interface,
        "started_at": stamp, "machine": machine(), "cores": os.cpu_count(),
        "options": {k: (str(v) if isinstance(v, Path) else v)
                    for k, v in opts.__dict__.items()},
        "window_s": opts.duration_s, "runs": [],
    }
    if diameter:  # the Python generator; the ceiling is an SBI (HTTP/2) figure
        rep["go_build_s"] = None
        exe, msg = None, "not measured in the Diameter mode (an HTTP/2 figure)"
    else:
        log(f"building the load generator ({LOADGEN_SRC})")
        rep["go_build_s"] = build_loadgen()
        exe, msg = (h2load.ensure_installed() if opts.ceiling
                    else (None, "disabled (--no-ceiling)"))
    log(msg)
    if exe is None:
        rep["ceiling_skipped"] = msg
    db = embedded.start(workdir / "db", prefer=opts.db, log=workdir / "db.log")
    log(f"SecantusDB ({db.kind} server) at {db.uri}")
    rep["database"] = {"kind": db.kind, "server": "secantusd-rs" if db.kind == "rust"
                       else "secantusd-py"}
    try:
        # Small caps are crossed by the update in the middle of a session.
        cross_at = max(1, (opts.updates + 1) // 2)
        cap_mb = max(1, -(-opts.usage_bytes * cross_at // MIB))
        catalog = write_catalog(workdir / "catalog", cap_mb)
        settings = Settings.load(BENCH_CONFIG, mongodb_uri=db.uri, mongodb_database="nf_bench",
                                 catalog_dir=catalog)
        log(f"seeding {opts.subscribers} subscribers ({opts.small_cap_share:.0%} on a "
            f"{cap_mb} MiB cap) with the ledger's bulk function")
        pop, seed_info = asyncio.run(seed_population(
            settings, opts.subscribers, opts.small_cap_share, cap_mb * MIB))
        rep["seed"] = seed_info
        log(f"seeded in {seed_info['seconds']} s (first read afterwards: "
            f"{seed_info['first_read_s']} s)")
        population = workdir / "population.json"
        population.write_text(json.dumps(pop))
        if opts.fraud == "compare":
            _compare_fraud(opts, rep, db, workdir, catalog, population, exe)
        else:
            _runs(opts, rep, db, workdir, catalog, population, exe, settings)
    finally:
        db.stop()
        rep["logs"] = str(keep_logs(workdir, RESULTS / f"bench-{stamp}"))
        shutil.rmtree(workdir, ignore_errors=True)
    warning = report.mark_noisy(rep)
    out = opts.out or RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps(rep, indent=2) + "\n")
    print(report.table(rep))
    if warning:
        print(warning)
    if "fraud_compare" in rep:
        print(report.fraud_table(rep["fraud_compare"]))
    if "profile" in rep:
        print(profile.text(rep["profile"]))
    print(f"report: {out}")
    return rep


def _compare_fraud(opts: Options, rep: dict[str, Any], db: embedded.EmbeddedDb,
                   workdir: Path, catalog: Path, population: Path, exe: str | None) -> None:
    """Fraud protection off and on, alternating, one fresh NF per run (no ceiling)."""
    parts = opts.repeat * 2
    by_state: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for i in range(opts.repeat):
        for k, state in enumerate(("off", "on") if i % 2 == 0 else ("on", "off")):
            part = 2 * i + k
            if state == "on":
                _fraud_reads_from_now(db.uri)
            with running_nf(opts, db.uri, "nf_bench", workdir, catalog, fraud=state) as nf:
                roots = {"nf": [nf.proc.pid], "db": [db.process.pid]}
                log(f"run {i + 1}/{opts.repeat}, fraud {state}: load generator")
                load, used, dbops = run_loadgen(opts, [nf], population, part, parts, roots,
                                                workdir / f"load-{part}.json", db.uri)
            one: dict[str, Any] = {"index": part, "fraud": state, "load": load,
                                   "cpu": used, "db_ops": dbops}
            one["summary"] = report.run_summary(load, None, used)
            one["summary"]["db_ops_per_s"] = dbops.get("per_s")
            rep["runs"].append(one)
            by_state[state].append(one["summary"])
    med = {state: report.medians(s) for state, s in by_state.items()}
    rep["median"] = med["on"]
    rep["fraud_compare"] = {
        "off": med["off"], "on": med["on"],
        "throughput_ratio": report.ratio(med["on"].get("ops_per_s_total"),
                                         med["off"].get("ops_per_s_total")),
        "chf_update_ratio": report.ratio(med["on"].get("chf_update_per_s"),
                                         med["off"].get("chf_update_per_s")),
    }


def _fraud_reads_from_now(db_uri: str) -> None:
    """Move the fraud reader's checkpoint to the present, so that an NF with the rules on
    does not first read the records of the run with them off before it. (The reader
    re-reads ``late_window_s`` before its checkpoint when it starts; that window is
    skipped here and caught by its late scan.)"""
    late = timedelta(seconds=FraudSettings().late_window_s)
    c: MongoClient[dict[str, Any]]
    with MongoClient(db_uri) as c:
        c["nf_bench"]["fraud_cursor"].update_one(
            {"_id": "edrs"}, {"$set": {"hi_t": datetime.now(UTC) + late, "hi_id": None,
                                       "owner": None}}, upsert=True)


def _runs(opts: Options, rep: dict[str, Any], db: embedded.EmbeddedDb, workdir: Path,
          catalog: Path, population: Path, exe: str | None, settings: Settings) -> None:
    with ExitStack() as stack:
        nfs = [stack.enter_context(running_nf(opts, db.uri, "nf_bench", workdir, catalog, i,
                                                     fraud=opts.fraud))
               for i in range(opts.instances)]
        nf = nfs[0]
        roots = {"nf": [n.proc.pid for n in nfs], "db": [db.process.pid]}
        log(f"{len(nfs)} x nf serve ({opts.server}, {opts.workers} SBI worker(s)) on "
            f"{', '.join(n.sbi for n in nfs)}")
        for i in range(opts.repeat):
            one: dict[str, Any] = {"index": i}
            if exe is not None:
                log(f"run {i + 1}/{opts.repeat}: ceiling (h2load, {opts.conns} conns x "
                    f"{ceiling_streams(opts)} streams, {opts.ceiling_duration_s:.0f} s)")
                one["ceiling"] = ceiling(opts, exe, nf, roots)
            log(f"run {i + 1}/{opts.repeat}: load generator ({opts.mode} loop)")
            prof: list[tuple[subprocess.Popen[bytes], Path]] = []

            def _start_profile(nf: Nf = nf, prof: list[Any] = prof) -> None:
                p = start_profile(opts, nf, workdir)
                if p is not None:
                    prof.append(p)

            profiled = opts.profile and i == min(1, opts.repeat - 1)
            load, used, dbops = run_loadgen(opts, nfs, population, i, opts.repeat, roots,
                                            workdir / f"load-{i}.json", db.uri,
                                            _start_profile if profiled else None)
            if prof:
                rep["profile"] = finish_profile(*prof[0])
            one["load"], one["cpu"], one["db_ops"] = load, used, dbops
            one["summary"] = report.run_summary(load, one.get("ceiling"), used)
            one["summary"]["db_ops_per_nf_request"] = dbops.get("per_nf_request")
            if opts.interface == "diameter":
                one["summary"]["db_ops_per_ccr"] = dbops.get("per_nf_request")
            one["summary"]["db_ops_per_s"] = dbops.get("per_s")
            if opts.warm_probe and opts.interface == "sbi":
                log(f"run {i + 1}/{opts.repeat}: warm-update probe (database operations)")
                probe = warm_ops.measure(settings, nf.sbi,
                                         lambda: db_opcounters(db.uri), i)
                one["warm_update_probe"] = probe
                one["summary"]["db_ops_per_warm_update"] = probe["per_update"]
                one["summary"]["db_writes_per_warm_update"] = probe["writes_per_update"]
            rep["runs"].append(one)
    rep["median"] = report.medians([r["summary"] for r in rep["runs"]])


def keep_logs(workdir: Path, dest: Path) -> Path:
    """Copy the run's logs and raw results (not the database) next to the report."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in workdir.iterdir():
        if f.is_file():
            shutil.copyfile(f, dest / f.name)
    return dest


def start_profile(opts: Options, nf: Nf, workdir: Path
                  ) -> tuple[subprocess.Popen[bytes], Path] | None:
    """py-spy on the process serving the load: an SBI worker, or the Diameter process."""
    what = "Diameter process" if opts.interface == "diameter" else "SBI worker"
    pids = (diameter_pids(nf.proc.pid) if opts.interface == "diameter"
            else sbi_worker_pids(nf.proc.pid))
    if not pids or profile.py_spy() is None:
        log(f"profile skipped: py-spy not installed or no {what} found")
        return None
    out = workdir / "profile.txt"
    # Started when the window begins; py-spy stops by itself at its end.
    log(f"profiling {what} {pids[0]} with py-spy for {opts.duration_s:.0f} s")
    return profile.record(pids[0], opts.duration_s, out), out


def finish_profile(proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": "py-spy did not finish"}
    if not out.is_file():
        return {"error": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
    summary = profile.summarize(out.read_text())
    summary["collapsed_stacks"] = out.name  # kept with the run's logs
    return summary
