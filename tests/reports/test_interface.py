"""The interface of charging EDRs (``sbi`` or ``gy``) in the export and the usage report,
and exports written before the column existed still read (parquet and CSV)."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nf.reports import queries
from nf.reports.export import Exporter
from nf.reports.queries import ReportDb
from nf.store.mongo import Db
from tests.reports import helpers as h

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
DAY = date(2026, 11, 3)


def _drop_interface(root: Path, fmt: str) -> int:
    """Rewrite the files of ``root`` as an export from before the ``interface`` column."""
    n = 0
    for f in root.glob(f"charging/*/*/*.{fmt}"):
        if fmt == "parquet":
            t = pq.read_table(f)
            pq.write_table(t.drop_columns(["interface"]), f)
        else:
            with f.open() as src:
                rows = list(csv.DictReader(src))
            names = [c for c in rows[0] if c != "interface"]
            with f.open("w", newline="") as out:
                w = csv.DictWriter(out, names, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
        n += 1
    return n


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
async def test_usage_per_interface_and_old_exports(db: Db, tmp_path: Path, fmt: str) -> None:
    p = h.party("imsi-001010000000101")
    await db.edrs.insert_many([
        # The day before: exported, then made to look like an export of an older version.
        h.charging("old", T0 - timedelta(days=1), p, ul=1, dl=2, ref="r0"),
    ])
    await Exporter(db, tmp_path, fmt).export(T0 - timedelta(days=1), T0)  # type: ignore[arg-type]
    assert _drop_interface(tmp_path, fmt) == 1
    await db.edrs.insert_many([
        h.charging("s1", T0, replace(p, interface="sbi"), ul=10, dl=20, ref="r1"),
        h.charging("g1", T0, replace(p, interface="gy"), ul=100, dl=200, ref="r2"),
        h.charging("g2", T0, replace(p, interface="gy"), ul=1000, dl=2000, ref="r3"),
        h.charging("n1", T0, p, ul=3, dl=4, ref="r4"),  # written before 4G: the SBI's
    ])
    await Exporter(db, tmp_path, fmt).export(T0, T0 + timedelta(days=1))  # type: ignore[arg-type]
    with ReportDb(tmp_path) as rdb:
        rows = {(str(r["day"]), r["interface"]): (r["bytes_total"], r["sessions"])
                for r in queries.usage(rdb, DAY - timedelta(days=1), DAY).records()}
    assert rows == {("2026-11-02", "sbi"): (3, 1), ("2026-11-03", "sbi"): (37, 2),
                    ("2026-11-03", "gy"): (3300, 2)}
