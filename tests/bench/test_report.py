"""The benchmark's parsers and report: h2load output, CPU accounting, medians, profile."""

from __future__ import annotations

import os

import pytest

from bench import cpu, h2load, profile, report

H2LOAD_OUT = """\
starting benchmark...
spawning thread #0: 4 total client(s). 0 total requests
Application protocol: h2c
finished in 10.00s, 2846.88 req/s, 170.94KB/s
requests: 28469 total, 28469 started, 28469 done, 28400 succeeded, 69 failed, 3 errored, 1 timeout
status codes: 28400 2xx, 0 3xx, 60 4xx, 9 5xx
traffic: 1.67MB (1750432) total, 786.99KB (805876) headers (space savings 81.54%)
                     min         max         mean         sd        +/- sd
time for request:      950us    320.76ms     90.22ms     38.58ms    79.53%
time for connect:        0us         0us         0us         0us     0.00%
"""


def test_h2load_summary_is_parsed() -> None:
    r = h2load.parse(H2LOAD_OUT)
    assert r.req_per_s == pytest.approx(2846.88)
    assert (r.total, r.succeeded, r.failed, r.errored, r.timeout) == (28469, 28400, 69, 3, 1)
    assert (r.status_2xx, r.status_4xx, r.status_5xx) == (28400, 60, 9)
    assert r.min_ms == pytest.approx(0.95)
    assert r.max_ms == pytest.approx(320.76)
    assert r.protocol == "h2c"


def test_h2load_output_without_summary_is_rejected() -> None:
    with pytest.raises(ValueError, match="finished"):
        h2load.parse("connect failed\n")


def test_h2load_only_targets_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        h2load.command("h2load", "http://10.0.0.1:80/healthz", conns=1, streams=1,
                       duration_s=1, warmup_s=0)
    cmd = h2load.command("h2load", "http://127.0.0.1:8000/healthz", conns=4, streams=64,
                         duration_s=10, warmup_s=2)
    assert cmd[cmd.index("-c") + 1] == "4" and cmd[cmd.index("-m") + 1] == "64"


def test_cpu_tree_sees_this_process_spend_time() -> None:
    before = cpu.snapshot({"me": os.getpid()})
    x = 0
    for i in range(3_000_000):
        x += i * i
    after = cpu.snapshot({"me": os.getpid()})
    used = cpu.usage(before, after, 1.0, cores=2)
    me = used["me"]
    assert isinstance(me, dict)
    assert me["cpu_s"] > 0.05
    assert me["pct_all_cores"] == pytest.approx(me["pct_one_core"] / 2, abs=0.1)
    assert any(p["pid"] == os.getpid() for p in me["processes"])


def _load(update_rate: float, p99: float, errors: int = 0) -> dict[str, object]:
    return {
        "ops": {"chf_update": {"per_s": update_rate, "p50_ms": 2.0, "p95_ms": 5.0,
                               "p99_ms": p99, "max_ms": 40.0},
                "pcf_create": {"per_s": update_rate / 5, "p50_ms": 3.0, "p95_ms": 6.0,
                               "p99_ms": 9.0, "max_ms": 20.0}},
        "errors": {"chf_update http:500:SYSTEM_FAILURE": errors} if errors else {},
        "errors_total": errors,
        "throttle": {"crossings": 10, "notified": 10, "missing": 0,
                     "from_send": {"p50_ms": 20.0, "p99_ms": 60.0}},
        "client_cpu": {"pct_of_one_core": 40.0},
    }


def test_medians_ratio_and_table() -> None:
    runs = [report.run_summary(_load(r, p), {"req_per_s": 3000.0},
                               {"nf": {"pct_all_cores": 50.0}, "db": {"pct_all_cores": 10.0}})
            for r, p in ((1000.0, 10.0), (1200.0, 30.0), (1100.0, 20.0))]
    assert runs[0]["ops_per_s_total"] == 1200.0
    assert runs[0]["ratio_to_ceiling"] == pytest.approx(0.4)
    med = report.medians(runs)
    assert med["chf_update_per_s"] == 1100.0
    assert med["chf_update_p99_ms"] == 20.0
    assert med["runs"] == 3
    rep = {"label": "t", "median": med, "window_s": 20, "cores": 2,
           "runs": [{"load": _load(1.0, 1.0, errors=2)}],
           "seed": {"subscribers": 10, "seconds": 1.0, "per_s": 10.0}}
    text = report.table(rep)
    assert "chf_update" in text and "1100" in text
    assert "http:500:SYSTEM_FAILURE x2" in text
    assert "ceiling" in text and "0.44" in text
    assert "p99 60.00 ms; 10 of 10 crossings notified" in text


def test_errors_are_summed_not_medianed() -> None:
    med = report.medians([{"errors_total": 0}, {"errors_total": 3}, {"errors_total": 0}])
    assert med["errors_total"] == 3


def test_profile_summary_groups_by_component() -> None:
    collapsed = "\n".join([
        "process 1:python;run (granian/server.py:1);handle (/x/site-packages/quart/app.py:10);"
        "update (/w/nf/chf/http.py:5);find_one (/x/site-packages/pymongo/coll.py:9) 30",
        "process 1:python;run (granian/server.py:1);handle (/x/site-packages/quart/app.py:10) 10",
        "process 1:python;select (/usr/lib/python3.11/selectors.py:468) 60",
    ])
    s = profile.summarize(collapsed)
    assert s["samples"] == 100
    comps = {r["name"]: r["pct"] for r in s["self_by_component"]}
    assert comps == {"stdlib.selectors": 60.0, "pymongo": 30.0, "quart": 10.0}
    incl = {r["name"]: r["pct"] for r in s["inclusive_by_component"]}
    assert incl["quart"] == 40.0 and incl["nf.chf"] == 30.0
    assert "pymongo" in profile.text(s)


def test_fraud_comparison_ratio_and_table() -> None:
    assert report.ratio(270.0, 300.0) == 0.9
    assert report.ratio(None, 300.0) is None and report.ratio(1.0, 0) is None
    text = report.fraud_table({"off": {"ops_per_s_total": 300.0, "chf_update_per_s": 200.0},
                               "on": {"ops_per_s_total": 285.0, "chf_update_per_s": 190.0},
                               "throughput_ratio": 0.95})
    assert "95.0% of off (5.0% cost)" in text


def test_a_run_with_other_work_above_five_percent_marks_the_report_noisy() -> None:
    quiet = {"runs": [{"summary": {"others_cpu_pct_all_cores": v}} for v in (1.2, 4.9)]}
    assert report.mark_noisy(quiet) is None
    assert quiet["noisy"] is False and quiet["others_cpu_pct_max"] == 4.9
    busy = {"runs": [{"summary": {"others_cpu_pct_all_cores": v}} for v in (1.2, 15.6)]}
    warning = report.mark_noisy(busy)
    assert warning is not None and "15.6%" in warning and "quiet host" in warning
    assert busy["noisy"] is True
    unknown: dict[str, object] = {"runs": [{"summary": {}}]}
    assert report.mark_noisy(unknown) is None and unknown["noisy"] is False


def test_diameter_run_summary_counts_ccrs_and_the_rar() -> None:
    """The Diameter mode: every CCR is a request; the NF's CPU (its Diameter process and
    the rest) per CCR; the RAR is the throttle; the Diameter process's share apart."""
    load = {"interface": "diameter", "errors_total": 0,
            "ops": {"gx_ccr_i": {"per_s": 10.0}, "gy_ccr_i": {"per_s": 10.0},
                    "gy_ccr_u": {"per_s": 30.0, "p99_ms": 9.0}, "gy_ccr_t": {"per_s": 10.0},
                    "gx_ccr_t": {"per_s": 10.0}},
            "ccr": {"p50_ms": 2.0, "p99_ms": 8.0},
            "throttle": {"crossings": 4, "notified": 4, "missing": 0,
                         "from_send": {"p50_ms": 20.0, "p99_ms": 40.0}}}
    nf_cpu = {"window_s": 10.0, "nf": {
        "pct_one_core": 35.0, "pct_all_cores": 17.5, "processes": [
            {"pid": 2, "cmdline": "python -m nf.diameter_process diameter", "cpu_s": 2.0},
            {"pid": 3, "cmdline": "python -m nf.sbi.runner oam", "cpu_s": 1.5}]}}
    s = report.run_summary(load, None, nf_cpu)
    assert s["ccr_per_s"] == 70.0 and s["gy_ccr_u_per_s"] == 30.0
    assert (s["cca_p50_ms"], s["cca_p99_ms"]) == (2.0, 8.0)
    assert s["nf_cpu_ms_per_ccr"] == 5.0  # 0.35 CPU-s per s over 70 CCR/s
    assert s["diameter_process_cpu_pct_one_core"] == 20.0
    assert (s["rar_p50_ms"], s["rar_p99_ms"]) == (20.0, 40.0)
    # The SBI mode's summary has none of these names.
    sbi = report.run_summary({**load, "interface": None}, None, nf_cpu)
    assert "ccr_per_s" not in sbi


def test_diameter_report_table_says_ccrs_and_rar() -> None:
    med = {"runs": 1, "ccr_per_s": 70.0, "gy_ccr_u_per_s": 30.0, "cca_p50_ms": 2.0,
           "cca_p99_ms": 8.0, "nf_cpu_ms_per_ccr": 5.0, "throttle_crossings": 4,
           "throttle_notified": 4, "throttle_missing": 0, "throttle_p50_ms": 20.0,
           "throttle_p99_ms": 40.0, "db_ops_per_s": 100.0, "db_ops_per_nf_request": 3.0,
           "gy_ccr_u.per_s": 30.0}
    text = report.table({"interface": "diameter", "median": med, "runs": [], "cores": 2})
    assert "Diameter: 70.00 CCR/s (30.00 Gy CCR-U/s)" in text
    assert "cap -> Gx RAR" in text and "per CCR" in text and "gy_ccr_u" in text
