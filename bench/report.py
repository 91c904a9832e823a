"""Turning the runs of one benchmark into the report: medians across repeated runs, the
ceiling ratio, and a short table for the terminal."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

OPS = ("pcf_create", "chf_create", "chf_update", "chf_release", "pcf_delete", "healthz",
       # The Diameter mode's (python -m bench --interface diameter): one per CCR kind.
       "gx_ccr_i", "gy_ccr_i", "gy_ccr_u", "gy_ccr_t", "gx_ccr_t")
STATS = ("per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms")


def _median(values: Iterable[float | int | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(statistics.median(vals), 3) if vals else None


def _get(d: Mapping[str, Any], *path: str) -> Any:
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    return cur


def run_summary(load: Mapping[str, Any], ceiling: Mapping[str, Any] | None,
                nf_cpu: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headline numbers of one run (loadgen result + h2load result + CPU)."""
    ops = load.get("ops", {})
    total = sum(float(o.get("per_s", 0.0)) for o in ops.values())
    out: dict[str, Any] = {
        "ops_per_s_total": round(total, 1),
        "chf_update_per_s": _get(ops, "chf_update", "per_s"),
        # Stable headline keys (the targets are stated against these).
        "chf_updates_per_s": _get(ops, "chf_update", "per_s"),
        "chf_update_p99_ms": _get(ops, "chf_update", "p99_ms"),
        "errors_total": load.get("errors_total", 0),
        "warmup_errors_total": sum((load.get("warmup_errors") or {}).values()),
        "throttle_p50_ms": _get(load, "throttle", "from_send", "p50_ms"),
        "throttle_p99_ms": _get(load, "throttle", "from_send", "p99_ms"),
        "throttle_crossings": _get(load, "throttle", "crossings"),
        "throttle_notified": _get(load, "throttle", "notified"),
        "throttle_missing": _get(load, "throttle", "missing"),
        "loadgen_cpu_pct_one_core": _get(load, "client_cpu", "pct_of_one_core"),
    }
    for op, st in ops.items():
        for k in STATS:
            out[f"{op}.{k}"] = st.get(k)
    if ceiling is not None:
        rps = float(ceiling.get("req_per_s", 0.0))
        out["ceiling_req_per_s"] = rps
        out["ratio_to_ceiling"] = round(total / rps, 3) if rps > 0 else None
    if nf_cpu is not None:
        out["nf_cpu_pct_all_cores"] = _get(nf_cpu, "nf", "pct_all_cores")
        # Requests per second of NF CPU: what one core buys, less sensitive than raw
        # throughput to other work on a shared host.
        one = _get(nf_cpu, "nf", "pct_one_core")
        out["requests_per_nf_cpu_s"] = (round(total / (float(one) / 100), 1)
                                        if isinstance(one, int | float) and one > 0 else None)
        rps = out["requests_per_nf_cpu_s"]
        out["nf_cpu_ms_per_request"] = round(1000 / rps, 3) if rps else None
        out["db_cpu_pct_all_cores"] = _get(nf_cpu, "db", "pct_all_cores")
        if load.get("interface") == "diameter":
            out.update(diameter_summary(load, nf_cpu, out))
        out["loadgen_cpu_pct_all_cores"] = _get(nf_cpu, "loadgen", "pct_all_cores")
        out["machine_busy_pct"] = _get(nf_cpu, "machine", "pct_all_cores")
        out["others_cpu_pct_all_cores"] = _get(nf_cpu, "others", "pct_all_cores")
    return out


def diameter_summary(load: Mapping[str, Any], nf_cpu: Mapping[str, Any],
                     out: Mapping[str, Any]) -> dict[str, Any]:
    """The Diameter mode's headline names for the same figures: CCRs are its requests
    (the NF's CPU — its Diameter process and the rest of it — per CCR), the Gx RAR is
    its throttle notification; plus the Diameter process's own share of the NF's CPU."""
    dia = [p for p in (_get(nf_cpu, "nf", "processes") or ())
           if "nf.diameter_process" in str(p.get("cmdline", ""))]
    window = _get(nf_cpu, "window_s")
    dia_s = sum(float(p.get("cpu_s", 0.0)) for p in dia)
    return {
        "ccr_per_s": out.get("ops_per_s_total"),
        "gy_ccr_u_per_s": _get(load, "ops", "gy_ccr_u", "per_s"),
        "cca_p50_ms": _get(load, "ccr", "p50_ms"),
        "cca_p99_ms": _get(load, "ccr", "p99_ms"),
        "nf_cpu_ms_per_ccr": out.get("nf_cpu_ms_per_request"),
        "diameter_process_cpu_pct_one_core": (round(100 * dia_s / float(window), 1)
                                              if dia and window else None),
        "rar_p50_ms": out.get("throttle_p50_ms"),
        "rar_p99_ms": out.get("throttle_p99_ms"),
    }


def medians(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Median of every numeric headline across runs (errors: the sum)."""
    keys: list[str] = []
    for s in summaries:
        keys += [k for k in s if k not in keys]
    out: dict[str, Any] = {}
    for k in keys:
        vals = [s.get(k) for s in summaries]
        if k in ("errors_total", "warmup_errors_total", "throttle_missing"):
            out[k] = sum(int(v or 0) for v in vals)
        elif all(isinstance(v, int | float) or v is None for v in vals):
            out[k] = _median(vals)
    out["runs"] = len(summaries)
    return out


# Other work on the host above this share of all cores makes a run's figures unfit to quote.
NOISY_OTHERS_PCT = 5.0


def mark_noisy(rep: dict[str, Any]) -> str | None:
    """Set ``rep["noisy"]``: whether any run had more than ``NOISY_OTHERS_PCT`` % of the
    cores busy with other work; returns the warning to print when it had."""
    worst = max((float(v) for r in rep.get("runs", ())
                 if isinstance(v := _get(r, "summary", "others_cpu_pct_all_cores"),
                               int | float)), default=None)
    rep["noisy"] = worst is not None and worst > NOISY_OTHERS_PCT
    rep["others_cpu_pct_max"] = worst
    if not rep["noisy"]:
        return None
    return (f"WARNING: other work on the host took up to {worst:.1f}% of the cores during "
            f"the runs (more than {NOISY_OTHERS_PCT:g}%): these figures measure that work "
            "too; run again on a quiet host before quoting them (\"noisy\": true in the "
            "report)")


def _fmt(v: Any, width: int = 8) -> str:
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return (f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}").rjust(width)
    return str(v).rjust(width)


def table(report: Mapping[str, Any]) -> str:
    """A short text table of the medians, the ceiling and the run's context."""
    med = report.get("median", {})
    lines = [f"NF benchmark: {report.get('label', '')} "
             f"(median of {med.get('runs', 0)} run(s), window {report.get('window_s')} s each)"]
    lines.append(f"{'operation':<13}{'ops/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
                 f"{'max ms':>9}")
    for op in OPS:
        if f"{op}.per_s" not in med:
            continue
        lines.append(f"{op:<13}" + "".join(_fmt(med.get(f"{op}.{k}"), 9) for k in STATS))
    lines.append(f"{'all':<13}{_fmt(med.get('ops_per_s_total'), 9)}   "
                 f"({_fmt(med.get('requests_per_nf_cpu_s'), 0)} requests per NF CPU-second)")
    errs: dict[str, int] = {}
    for run in report.get("runs", []):
        for cause, n in (_get(run, "load", "errors") or {}).items():
            errs[cause] = errs.get(cause, 0) + int(n)
    if errs:
        lines.append("errors (all runs): " + _causes(errs))
    else:
        lines.append("errors: none")
    warm: dict[str, int] = {}
    for run in report.get("runs", []):
        for cause, n in (_get(run, "load", "warmup_errors") or {}).items():
            warm[cause] = warm.get(cause, 0) + int(n)
    if warm:
        lines.append("errors during warm-ups (not in the windows): " + _causes(warm))
    diameter = report.get("interface") == "diameter"
    if diameter:
        lines.append(
            f"Diameter: {_fmt(med.get('ccr_per_s'), 0)} CCR/s ("
            f"{_fmt(med.get('gy_ccr_u_per_s'), 0)} Gy CCR-U/s), CCA p50 "
            f"{_fmt(med.get('cca_p50_ms'), 0)} ms, p99 {_fmt(med.get('cca_p99_ms'), 0)} ms; "
            f"NF CPU {_fmt(med.get('nf_cpu_ms_per_ccr'), 0)} ms per CCR (Diameter process "
            f"{_fmt(med.get('diameter_process_cpu_pct_one_core'), 0)}% of one core)")
    what = ("cap -> Gx RAR (from the crossing CCR-U's send)" if diameter else
            "cap -> throttle notification (from the crossing update's send)")
    if med.get("throttle_crossings"):
        lines.append(
            f"{what}: p50 "
            f"{_fmt(med.get('throttle_p50_ms'), 0)} ms, p99 {_fmt(med.get('throttle_p99_ms'), 0)}"
            f" ms; {_int(med.get('throttle_notified'))} of {_int(med.get('throttle_crossings'))}"
            f" crossings notified per run, {_int(med.get('throttle_missing'))} missing"
            " (all runs)")
    elif med.get("throttle_crossings") is not None:
        lines.append("cap -> throttle notification: no cap was crossed in the window")
    if med.get("ceiling_req_per_s") is not None:
        lines.append(f"ceiling (h2load GET /healthz, same conns/streams): "
                     f"{_fmt(med.get('ceiling_req_per_s'), 0)} req/s; the NF mix reaches "
                     f"{_fmt(med.get('ratio_to_ceiling'), 0)} of it")
    elif report.get("ceiling_skipped"):
        lines.append(f"ceiling: skipped ({report['ceiling_skipped']})")
    lg = med.get("loadgen_cpu_pct_all_cores")
    if lg is None:
        lg = _pct_all(med.get("loadgen_cpu_pct_one_core"), report.get("cores"))
    lines.append(f"CPU (% of all {report.get('cores')} cores): NF "
                 f"{_fmt(med.get('nf_cpu_pct_all_cores'), 0)}, database "
                 f"{_fmt(med.get('db_cpu_pct_all_cores'), 0)}, load generator {_fmt(lg, 0)}"
                 f", other work on the host {_fmt(med.get('others_cpu_pct_all_cores'), 0)}")
    if med.get("db_ops_per_s") is not None:
        lines.append(f"database: {_fmt(med.get('db_ops_per_s'), 0)} operations/s, "
                     f"{_fmt(med.get('db_ops_per_nf_request'), 0)} per "
                     + ("CCR" if diameter else "NF request"))
    seed = report.get("seed")
    if seed:
        lines.append(f"seeding: {seed.get('subscribers')} subscribers in "
                     f"{seed.get('seconds')} s ({seed.get('per_s')} /s); the database's first "
                     f"read afterwards took {seed.get('first_read_s')} s")
    return "\n".join(lines)


def _causes(errs: Mapping[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(errs.items(), key=lambda i: -i[1]))


def _int(v: Any) -> str:
    return "-" if v is None else str(round(float(v)))


def _pct_all(pct_one: Any, cores: Any) -> float | None:
    if not isinstance(pct_one, int | float) or not isinstance(cores, int) or cores <= 0:
        return None
    return round(float(pct_one) / cores, 1)


def ratio(a: Any, b: Any) -> float | None:
    """``a / b`` rounded, or None when either is missing or ``b`` is 0."""
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    return round(a / b, 3)


def fraud_table(cmp: Mapping[str, Any]) -> str:
    """Fraud protection off vs on (medians), and what it costs in throughput."""
    lines = ["fraud protection   off        on", ]
    for key, name in (("ops_per_s_total", "ops/s"), ("chf_update_per_s", "updates/s"),
                      ("chf_update.p99_ms", "update p99 ms"),
                      ("requests_per_nf_cpu_s", "req/NF CPU-s")):
        off, on = cmp["off"].get(key), cmp["on"].get(key)
        lines.append(f"{name:<16}{_fmt(off, 9)}{_fmt(on, 10)}")
    r = cmp.get("throughput_ratio")
    if r is not None:
        lines.append(f"throughput with fraud on: {r:.1%} of off ({1 - r:.1%} cost)")
    return "\n".join(lines)
