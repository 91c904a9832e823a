"""EDR export and report at scale: ``python -m bench.edr_scale --count 10000000``.

Starts SecantusDB (the Rust server; ``--prefer python`` for the slow one), seeds ``count``
synthetic EDRs with ``nf edr seed`` (bulk inserts, not the CHF: this measures the export
and the reports, not charging), then runs ``nf edr export`` over the whole window and each
report ``--runs`` times over the export, every step as its own process. Prints one JSON
object: seed and export rates (EDRs/s), the export's peak RSS, the export size, and each
report's latency (median and all runs). ``--data DIR`` keeps the database and the export
between runs (``--skip-seed`` reuses them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nf.store import embedded

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "data" / "nf-test.yaml"
REPORTS = ("usage", "caps", "uptake", "roaming", "top")


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of one ``nf`` command run under /usr/bin/time."""
    timed = ["/usr/bin/time", "-f", "RSS_KB=%M"] if Path("/usr/bin/time").exists() else []
    t0 = time.monotonic()
    r = subprocess.run([*timed, sys.executable, "-m", "nf.cli", *cmd], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    m = re.search(r"RSS_KB=(\d+)", r.stderr)
    return dt, (int(m.group(1)) / 1024 if m else float("nan")), r.stdout


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.edr_scale", description=__doc__)
    p.add_argument("--count", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--subscribers", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data", type=Path, default=None, help="keep the database and export here")
    p.add_argument("--skip-seed", action="store_true", help="reuse the EDRs in --data")
    p.add_argument("--skip-export", action="store_true",
                   help="reuse the export in --data (reports only)")
    p.add_argument("--prefer", choices=("auto", "rust", "python"), default="rust")
    a = p.parse_args()
    data = a.data or Path(tempfile.mkdtemp(prefix="nf-edr-scale-"))
    data.mkdir(parents=True, exist_ok=True)
    db = embedded.start(data / "db", prefer=a.prefer, log=data / "db.log")
    out: dict[str, Any] = {"count": a.count, "days": a.days, "db": db.kind,
                           "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({"NF_CONFIG": str(CONFIG), "NF_MONGODB_URI": db.uri,
                "NF_MONGODB_DATABASE": "edrscale", "NF_MONGODB_TIMEOUT_MS": "120000"})
    export = data / "export"
    try:
        if not a.skip_seed:
            dt, rss, text = _run(["edr", "seed", "--count", str(a.count), "--days",
                                  str(a.days), "--subscribers", str(a.subscribers)], env)
            out["seed"] = {"seconds": round(dt, 1), "edrs_per_s": round(a.count / dt),
                           "peak_rss_mib": round(rss), "output": text.strip()}
            print(json.dumps(out["seed"]), file=sys.stderr, flush=True)
        if not a.skip_export:
            now = datetime.now(UTC)
            dt, rss, text = _run(["edr", "export", "--from",
                                  (now - timedelta(days=a.days + 1)).isoformat(), "--to",
                                  (now + timedelta(hours=1)).isoformat(), "--out",
                                  str(export)], env)
            out["export"] = {"seconds": round(dt, 1), "edrs_per_s": round(a.count / dt),
                             "peak_rss_mib": round(rss), "output": text.strip()}
            print(json.dumps(out["export"]), file=sys.stderr, flush=True)
        today = datetime.now(UTC).date()
        first = (today - timedelta(days=a.days + 1)).isoformat()
        last = today.isoformat()
        size = sum(f.stat().st_size for f in export.rglob("*") if f.is_file())
        out["export_bytes"] = size
        out["reports"] = {}
        for name in REPORTS:
            runs = []
            rss = 0.0
            for _ in range(a.runs):
                dt, r, _text = _run(["report", name, "--dir", str(export), "--from",
                                     first, "--to", last, "--format", "json",
                                     "--output", os.devnull, "--no-ledger"], env)
                runs.append(round(dt, 2))
                rss = max(rss, r)
            out["reports"][name] = {"median_s": statistics.median(runs), "runs_s": runs,
                                    "peak_rss_mib": round(rss)}
            print(json.dumps({name: out["reports"][name]}), file=sys.stderr, flush=True)
        out["load_avg_end"] = os.getloadavg()
    finally:
        db.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
