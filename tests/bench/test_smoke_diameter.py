"""A few seconds of the benchmark's Diameter mode against the real NF: seeding, the NF's
Diameter process, PGWs driving Gx + Gy sessions, the RAR at each cap crossing, CPU and
database accounting per CCR and the report, with zero errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import parse
from bench.orchestrate import Options, run

pytestmark = [pytest.mark.e2e]

DIAMETER_OPS = ("gx_ccr_i", "gy_ccr_i", "gy_ccr_u", "gy_ccr_t", "gx_ccr_t")


def test_tiny_diameter_benchmark_runs_end_to_end_without_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    opts = Options(subscribers=300, small_cap_share=0.5, conns=2, concurrency=6, updates=3,
                   duration_s=3, warmup_s=1, repeat=1, db="auto", out=out,
                   label="diameter smoke", interface="diameter")
    rep = run(opts)
    assert json.loads(out.read_text())["median"] == rep["median"]
    assert rep["interface"] == "diameter"
    (one,) = rep["runs"]
    load = one["load"]
    assert load["errors"] == {}, load["errors"]
    assert load["warmup_errors"] == {}, load["warmup_errors"]
    for op in DIAMETER_OPS:
        assert load["ops"][op]["count"] > 0, op
    # Three PGWs (at least one per host network), each with many sessions.
    assert load["connections"]["pgws"] == 3
    # A small-cap subscriber's crossing CCR-U: the PCF's new decision came back as a Gx
    # RAR for every crossing, with a lower APN-AMBR than the session started with.
    th = load["throttle"]
    assert th["crossings"] > 0
    assert th["missing"] == 0 and th["notified"] == th["crossings"]
    assert load["notifications"]["unexpected_rar"] == 0
    assert load["notifications"]["rar_speed_unchanged"] == 0
    med = rep["median"]
    for key in ("ccr_per_s", "gy_ccr_u_per_s", "cca_p50_ms", "cca_p99_ms",
                "nf_cpu_ms_per_ccr", "db_ops_per_ccr", "rar_p50_ms", "rar_p99_ms",
                "diameter_process_cpu_pct_one_core", "others_cpu_pct_all_cores"):
        assert isinstance(med[key], float) and med[key] >= 0, (key, med.get(key))
    assert med["ccr_per_s"] > 0 and med["nf_cpu_ms_per_ccr"] > 0 and med["db_ops_per_ccr"] > 0
    assert med["errors_total"] == 0
    assert isinstance(rep["noisy"], bool)
    text = capsys.readouterr().out
    assert "CCR/s" in text and "cap -> Gx RAR" in text and "errors: none" in text


def test_diameter_mode_is_chosen_on_the_command_line() -> None:
    assert parse(["--interface", "diameter"]).interface == "diameter"
    assert parse([]).interface == "sbi"
    with pytest.raises(SystemExit):
        parse(["--interface", "diameter", "--mode", "open"])
