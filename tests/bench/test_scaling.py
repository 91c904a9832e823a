"""The 1 -> 2 instance comparison of ``make bench-scaling`` (the runs themselves are the
benchmark's; this checks the arithmetic and the table)."""

from __future__ import annotations

import pytest

from bench.scaling import compare, text


def test_speedup_and_database_share() -> None:
    one = {"chf_update.per_s": 300.0, "ops_per_s_total": 900.0,
           "nf_cpu_pct_all_cores": 60.0, "db_cpu_pct_all_cores": 30.0}
    two = {"chf_update.per_s": 390.0, "ops_per_s_total": 1170.0,
           "nf_cpu_pct_all_cores": 55.0, "db_cpu_pct_all_cores": 40.0}
    cmp = compare(one, two)
    assert cmp["speedup_chf_updates"] == pytest.approx(1.3)
    assert cmp["speedup_all_requests"] == pytest.approx(1.3)
    assert cmp["db_share_of_nf_plus_db_cpu_1"] == pytest.approx(0.33)
    assert cmp["db_share_of_nf_plus_db_cpu_2"] == pytest.approx(0.42)
    table = text(cmp)
    assert "x1.3" in table and "390.0" in table


def test_missing_figures_give_no_speedup() -> None:
    cmp = compare({}, {"chf_update.per_s": 100.0})
    assert cmp["speedup_chf_updates"] is None
    assert cmp["db_share_of_nf_plus_db_cpu_1"] is None
    assert "-" in text(cmp)
