"""``python -m bench.scaling`` (``make bench-scaling``): the same benchmark with 1 and then
2 NF instances sharing one database, side by side, with where the CPU went.

Any ``python -m bench`` option applies to both runs (``--instances`` is set here). On one
2-core host the NF instances, the database and the load generator compete for the same
cores, so the numbers say how much a second instance buys *here* and what the database's
share of the CPU is; on a cluster each instance and the database have their own cores.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bench.__main__ import parse
from bench.orchestrate import RESULTS, log, run

COLUMNS = [
    ("chf_update.per_s", "CHF updates/s"),
    ("ops_per_s_total", "all requests/s"),
    ("chf_update.p99_ms", "update p99 ms"),
    ("nf_cpu_pct_all_cores", "NF CPU %"),
    ("db_cpu_pct_all_cores", "database CPU %"),
    ("loadgen_cpu_pct_all_cores", "load generator CPU %"),
    ("others_cpu_pct_all_cores", "other work CPU %"),
    ("machine_busy_pct", "machine busy %"),
    ("db_ops_per_nf_request", "DB ops per request"),
]


def compare(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """The headline medians of both runs, the speed-up, and the database's CPU share."""
    rows: dict[str, Any] = {}
    for key, _ in COLUMNS:
        rows[key] = {"1": one.get(key), "2": two.get(key)}
    out: dict[str, Any] = {"medians": rows}
    a, b = one.get("chf_update.per_s"), two.get("chf_update.per_s")
    out["speedup_chf_updates"] = round(b / a, 2) if a and b else None
    a, b = one.get("ops_per_s_total"), two.get("ops_per_s_total")
    out["speedup_all_requests"] = round(b / a, 2) if a and b else None
    for n, med in (("1", one), ("2", two)):
        nf, db = med.get("nf_cpu_pct_all_cores"), med.get("db_cpu_pct_all_cores")
        out[f"db_share_of_nf_plus_db_cpu_{n}"] = (
            round(db / (nf + db), 2) if nf is not None and db is not None and nf + db else None)
    return out


def text(cmp: dict[str, Any]) -> str:
    lines = ["NF instances: 1 -> 2 (one database, one host)",
             f"{'':<22}{'1 instance':>12}{'2 instances':>13}"]
    for key, name in COLUMNS:
        row = cmp["medians"][key]
        lines.append(f"{name:<22}" + "".join(
            ("-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)).rjust(w)
            for v, w in ((row["1"], 12), (row["2"], 13))))
    lines.append(f"speed-up: CHF updates x{cmp['speedup_chf_updates']}, all requests "
                 f"x{cmp['speedup_all_requests']}; the database's share of NF+database CPU: "
                 f"{cmp['db_share_of_nf_plus_db_cpu_1']} -> {cmp['db_share_of_nf_plus_db_cpu_2']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    reports = {}
    for n in (1, 2):
        log(f"scaling: {n} instance(s)")
        reports[n] = run(replace(opts, instances=n, out=None,
                                 label=f"{opts.label or 'scaling'}: {n} instance(s)"))
    cmp = compare(reports[1].get("median", {}), reports[2].get("median", {}))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"scaling-{stamp}.json"
    out.write_text(json.dumps({"comparison": cmp, "options": {
        k: str(v) for k, v in opts.__dict__.items()},
        "reports": [reports[1].get("label"), reports[2].get("label")]}, indent=2) + "\n")
    print(text(cmp))
    print(f"comparison: {out}")
    errors = sum(int(r.get("median", {}).get("errors_total", 1)) for r in reports.values())
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
