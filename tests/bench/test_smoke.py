"""A few seconds of the whole benchmark against the real NF: seeding, h2load ceiling, the
load generator, CPU accounting and the report, with zero errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import h2load
from bench.orchestrate import Options, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("go") is None and not Path("/usr/local/go/bin/go").is_file(),
                       reason="Go is not installed"),
]


def test_tiny_benchmark_runs_end_to_end_without_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    opts = Options(subscribers=600, small_cap_share=0.5, workers=1, conns=2, streams=8,
                   concurrency=8, updates=3, duration_s=3, warmup_s=1, repeat=1,
                   ceiling=h2load.binary() is not None, ceiling_duration_s=2,
                   db="auto", out=out, label="smoke", instances=2)
    rep = run(opts)
    assert json.loads(out.read_text())["median"] == rep["median"]
    assert rep["seed"]["subscribers"] == 600 and rep["seed"]["small_cap"] == 300
    (one,) = rep["runs"]
    load = one["load"]
    assert load["errors"] == {}, load["errors"]
    assert load["warmup_errors"] == {}, load["warmup_errors"]
    for op in ("pcf_create", "chf_create", "chf_update", "chf_release", "pcf_delete"):
        assert load["ops"][op]["count"] > 0, op
    # Every third update of a small-cap subscriber's first session crosses the cap: the
    # PCF must have pushed the throttled speed for each crossing.
    th = load["throttle"]
    assert th["crossings"] > 0
    assert th["missing"] == 0 and th["notified"] == th["crossings"]
    assert load["notifications"]["unexpected_pcf_update"] == 0
    assert one["cpu"]["nf"]["cpu_s"] > 0
    probe = one["warm_update_probe"]
    assert probe["errors"] == 0 and probe["updates"] > 0
    assert one["summary"]["db_ops_per_warm_update"] > 0
    assert one["summary"]["nf_cpu_ms_per_request"] > 0
    # Two NF instances on one database, one connection each.
    assert len(load["config"]["target"].split(",")) == 2
    if opts.ceiling:
        assert one["ceiling"]["req_per_s"] > 0 and one["ceiling"]["status_2xx"] > 0
        assert one["summary"]["ratio_to_ceiling"] > 0
    text = capsys.readouterr().out
    assert "chf_update" in text and "errors: none" in text


def test_tiny_population_curve_runs_end_to_end(tmp_path: Path) -> None:
    """``python -m bench --scale`` at one tiny size: seeding, first reads, disk, restart,
    the load and the curve row, with zero errors."""
    from bench import scale

    out = tmp_path / "scale.json"
    run_opts = Options(subscribers=400, small_cap_share=0.5, workers=1, conns=2, streams=8,
                       concurrency=4, updates=3, duration_s=2, warmup_s=1, repeat=1,
                       ceiling=False, db="auto", warm_probe=False)
    rep = scale.run(scale.ScaleOptions(sizes=(400,), run=run_opts, out=out))
    assert json.loads(out.read_text())["curve"] == rep["curve"]
    (size,) = rep["sizes"]
    assert size["seed"]["subscribers"] == 400
    (one,) = size["runs"]
    assert one["load"]["errors"] == {}, one["load"]["errors"]
    (row,) = rep["curve"]
    assert row["subscribers"] == 400 and row["chf_update_per_s"] > 0
    assert row["restart_ready_s"] is not None and row["disk_mib"] is not None
    assert out.with_suffix(".svg").read_text().startswith("<svg")
