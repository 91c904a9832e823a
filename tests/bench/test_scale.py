"""The population-scale benchmark's report pieces: the curve, its table, the SVG chart, disk
and memory accounting, and the command line (the multi-minute runs are not tests)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import chart, scale

SVG = "{http://www.w3.org/2000/svg}"


def _size(n: int, per_s: float, p99: float, errors: int = 0) -> dict[str, object]:
    return {
        "subscribers": n,
        "seed": {"per_s": 7000, "first_reads": {"first_s": 0.2}},
        "disk": {"mib": n / 1000, "bytes_per_subscriber": 1000.0},
        "indexes": {"index_bytes_total": n * 60},
        "restart": {"db_listen_s": 1.0, "db_first_read_s": 0.5, "nf_ready_s": 2.0},
        "median": {"chf_update_per_s": per_s, "chf_update_p99_ms": p99,
                   "chf_update.p50_ms": p99 / 3, "errors_total": errors,
                   "db_ops_per_nf_request": 2.5, "nf_peak_mib": 150.0},
    }


def test_curve_has_one_row_per_size_with_the_headline_numbers() -> None:
    rows = scale.curve([_size(100_000, 330.0, 120.0), _size(1_000_000, 310.0, 130.0, 2)])
    assert [r["subscribers"] for r in rows] == [100_000, 1_000_000]
    first = rows[0]
    assert first["chf_update_per_s"] == 330.0 and first["chf_update_p99_ms"] == 120.0
    assert first["seed_per_s"] == 7000 and first["first_read_s"] == 0.2
    assert first["disk_bytes_per_subscriber"] == 1000.0
    assert first["restart_ready_s"] == pytest.approx(3.5)
    assert first["index_bytes_total"] == 6_000_000
    assert rows[1]["errors_total"] == 2
    text = scale.table(rows)
    assert "1,000,000" in text and "310" in text and text.count("\n") == 2


def test_curve_tolerates_a_size_that_did_not_finish() -> None:
    rows = scale.curve([{"subscribers": 10_000_000, "seed": {"per_s": 6000}}])
    assert rows[0]["chf_update_per_s"] is None and rows[0]["restart_ready_s"] is None
    assert "-" in scale.table(rows)


def test_chart_is_valid_svg_with_both_series() -> None:
    rows = scale.curve([_size(100_000, 330.0, 120.0), _size(1_000_000, 310.0, 130.0),
                        _size(10_000_000, 250.0, 200.0)])
    root = ET.fromstring(chart.svg(rows, title="curve & more"))
    assert root.tag == f"{SVG}svg"
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 2
    assert all(len(pl.attrib["points"].split()) == 3 for pl in lines)
    assert len(root.findall(f"{SVG}circle")) == 6
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "curve & more" in texts and "100 k" in texts and "10 M" in texts
    # Throughput falls with the population: its points go down the chart (y grows).
    ys = [float(p.split(",")[1]) for p in lines[0].attrib["points"].split()]
    assert ys[0] < ys[2]


def test_chart_without_data_says_so() -> None:
    root = ET.fromstring(chart.svg([{"subscribers": 1000}]))
    assert "no data" in [t.text for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(("v", "want"), [(0, 1.0), (3.2, 5.0), (330, 500.0), (1001, 2000.0),
                                         (240, 250.0)])
def test_axis_maximum_is_a_round_number(v: float, want: float) -> None:
    assert chart._nice_max(v) == want


def test_disk_usage_counts_allocated_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 10_000)
    got = scale.disk_usage(tmp_path)
    assert got["bytes"] >= 110_000
    assert next(iter(got["largest_files"])) == "a"


def test_rss_of_this_process_is_measured() -> None:
    assert scale.rss_bytes(os.getpid()) > 10 * 2**20


def test_command_line() -> None:
    o = scale.parse(["--sizes", "1000", "20000", "--repeat", "1", "--duration", "5"])
    assert o.sizes == (1000, 20_000)
    assert o.run.repeat == 1 and o.run.duration_s == 5 and not o.run.ceiling
    assert o.run.concurrency == 32  # the standard mix otherwise
    with pytest.raises(SystemExit):
        scale.parse(["--sizes", "0"])


def test_combine_joins_separate_runs_into_one_curve(tmp_path: Path) -> None:
    early = tmp_path / "a.json"
    early.write_text(json.dumps({"kind": "scale", "sizes": [
        _size(100_000, 330.0, 120.0), _size(1_000_000, 300.0, 140.0)]}))
    late = tmp_path / "b.json"
    late.write_text(json.dumps({"kind": "scale", "sizes": [
        _size(10_000_000, 250.0, 200.0), _size(1_000_000, 310.0, 130.0)]}))
    out = tmp_path / "all.json"
    assert scale.main(["--combine", str(out), str(early), str(late)]) == 0
    rep = json.loads(out.read_text())
    assert [r["subscribers"] for r in rep["curve"]] == [100_000, 1_000_000, 10_000_000]
    assert rep["curve"][1]["chf_update_per_s"] == 310.0  # the later report wins
    assert [s["report"] for s in rep["sizes"]] == ["a.json", "b.json", "b.json"]
    ET.fromstring(out.with_suffix(".svg").read_text())
    (tmp_path / "other.json").write_text(json.dumps({"kind": "bench"}))
    with pytest.raises(SystemExit):
        scale.main(["--combine", str(out), str(tmp_path / "other.json")])


def test_seeding_shares_cover_every_group_exactly_once() -> None:
    groups = [{"network": "a", "first": 0, "count": 7, "plan": "p"},
              {"network": "b", "first": 3, "count": 2, "plan": "q"}]
    parts = scale.split_groups(groups, 3)
    assert len(parts) == 3
    ranges = sorted((g["network"], g["first"], g["first"] + g["count"]) for p in parts
                    for g in p)
    assert ranges == [("a", 0, 3), ("a", 3, 5), ("a", 5, 7), ("b", 3, 4), ("b", 4, 5)]
    assert all(g["plan"] == {"a": "p", "b": "q"}[g["network"]] for p in parts for g in p)
    assert scale.parse(["--seed-processes", "2"]).seed_processes == 2
    with pytest.raises(SystemExit):
        scale.parse(["--seed-processes", "0"])
