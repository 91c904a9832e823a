"""What accepting HTTP/1.1 on the SBI port costs HTTP/2: the SBI app under Granian with an
HTTP/2-only listener against the listener that takes both (what ``nf serve`` runs, with
``server.sbi_http1`` deciding in the app whether HTTP/1.1 is served or told 505).

Each round starts the SBI app three ways, interleaved so that a noisy host hurts them alike,
and measures ``h2load`` (h2c, prior knowledge) against ``GET /healthz`` of the SBI app:

- ``http2``: Granian ``--http 2`` (HTTP/2 only; an HTTP/1.1 request is reset);
- ``auto-off``: Granian ``--http auto``, ``server.sbi_http1: false`` (HTTP/1.1 gets 505);
- ``auto-on``: Granian ``--http auto``, ``server.sbi_http1: true``.

    .venv/bin/python -m bench.http_modes --rounds 3 --seconds 8

Prints the medians (throughput, and the server's CPU time per request, which a noisy host
disturbs less) and their ratios to ``http2``, and writes them as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import cpu, h2load
from nf.store import embedded

ROOT = Path(__file__).resolve().parents[1]
MODES = {"http2": ("2", "false"), "auto-off": ("auto", "false"), "auto-on": ("auto", "true")}


def _serve(mode: str, db_uri: str, port: int) -> subprocess.Popen[bytes]:
    http, sbi_http1 = MODES[mode]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({"NF_CONFIG": str(ROOT / "bench" / "nf-bench.yaml"), "NF_MONGODB_URI": db_uri,
                "NF_MONGODB_DATABASE": "http_modes", "NF_SERVER__SBI_HTTP1": sbi_http1,
                "NF_LOG_LEVEL": "WARNING"})
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
           "--http", http, "--loop", "uvloop", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--no-ws", "nf.sbi.entry:sbi_app"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"granian exited with {proc.returncode}")
        try:
            with httpx.Client(http1=False, http2=True, timeout=1) as c:
                if c.get(url).status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up in {timeout_s}s")


def measure(rounds: int, seconds: float, conns: int, streams: int) -> dict[str, Any]:
    exe, msg = h2load.ensure_installed()
    if exe is None:
        raise SystemExit(msg)
    db = embedded.start(None)
    runs: dict[str, list[float]] = {m: [] for m in MODES}
    # Server CPU per request (µs): steadier than throughput on a shared host.
    cpu_us: dict[str, list[float]] = {m: [] for m in MODES}
    try:
        for r in range(rounds):
            for mode in MODES:
                port = embedded.free_port()
                proc = _serve(mode, db.uri, port)
                try:
                    url = f"http://127.0.0.1:{port}/healthz"
                    _wait(url, proc)
                    before = sum(p.cpu_s for p in cpu.tree(proc.pid))
                    res, _ = h2load.run(exe, url, conns=conns, streams=streams,
                                        duration_s=seconds, warmup_s=0)
                    used = sum(p.cpu_s for p in cpu.tree(proc.pid)) - before
                    if res.failed or res.errored or res.timeout or res.status_5xx:
                        raise RuntimeError(f"{mode}: h2load saw errors: {res}")
                    runs[mode].append(res.req_per_s)
                    cpu_us[mode].append(1e6 * used / max(1, res.succeeded))
                    print(f"round {r + 1}/{rounds} {mode:9s} {res.req_per_s:9.0f} req/s "
                          f"{cpu_us[mode][-1]:7.0f} µs CPU/request ({res.protocol})",
                          flush=True)
                finally:
                    proc.terminate()
                    proc.wait(30)
    finally:
        db.stop()
    med = {m: statistics.median(v) for m, v in runs.items()}
    med_cpu = {m: statistics.median(v) for m, v in cpu_us.items()}
    return {"runs_req_per_s": runs, "median_req_per_s": med,
            "ratio_to_http2": {m: round(v / med["http2"], 3) for m, v in med.items()},
            "runs_cpu_us_per_request": cpu_us, "median_cpu_us_per_request": med_cpu,
            "cpu_ratio_to_http2": {m: round(v / med_cpu["http2"], 3)
                                   for m, v in med_cpu.items()},
            "conns": conns, "streams": streams, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "http_modes.json")
    a = ap.parse_args()
    report = measure(a.rounds, a.seconds, a.conns, a.streams)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2))
    for m, v in report["median_req_per_s"].items():
        print(f"{m:9s} median {v:9.0f} req/s  ratio {report['ratio_to_http2'][m]:.3f}  "
              f"CPU {report['median_cpu_us_per_request'][m]:6.0f} µs/request  "
              f"ratio {report['cpu_ratio_to_http2'][m]:.3f}")


if __name__ == "__main__":
    main()
