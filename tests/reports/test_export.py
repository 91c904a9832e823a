"""The EDR export against the real database: layout, types, idempotence, formats, the
retention index and the scheduled export with its marker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nf.clock import FakeClock
from nf.config import Settings
from nf.reports import schema
from nf.reports.export import Exporter, hours, read_table
from nf.reports.part import MARKER_ID, MARKERS, TTL_INDEX, ReportsPart, ensure_retention
from nf.runtime import Runtime
from nf.store.mongo import Db
from tests.reports import helpers as h

T0 = datetime(2026, 11, 3, 10, 15, tzinfo=UTC)
A = h.party("imsi-001010000000001")
B = h.party("imsi-001020000000005", "harbor", "bluepeak", "00102")


async def _seed(db: Db) -> None:
    await db.edrs.insert_many([
        h.charging("c1", T0, A, ul=100, dl=1000, debited=(("bk1", 1100),)),
        h.charging("c2", T0 + timedelta(minutes=5), A, ul=7, dl=9),
        h.charging("c3", T0 + timedelta(hours=1), B, ul=1, dl=2, ref="ref-b"),
        h.throttle("p1", T0, A),
        h.purchase("b1", T0, A, "lumen-addon-1gb-7d", buckets=("bk9",)),
        {"_id": "x1", "kind": "future-kind", "time": T0, "brand": "lumen"},
    ])


def _files(d: Path, pattern: str) -> list[Path]:
    return list(d.rglob(pattern))


def test_hours_round_outwards() -> None:
    got = hours(datetime(2026, 1, 1, 10, 30, tzinfo=UTC), datetime(2026, 1, 1, 12, 0, 1,
                                                                    tzinfo=UTC))
    assert [g.hour for g in got] == [10, 11, 12]
    assert hours(T0, T0) == []


async def test_layout_types_and_rows(db: Db, tmp_path: Path) -> None:
    await _seed(db)
    stats = await Exporter(db, tmp_path).export(T0 - timedelta(hours=1), T0 + timedelta(hours=3))
    assert stats.edrs == 5 and stats.skipped == 1
    assert stats.rows == {"charging": 3, "policy": 1, "purchase": 1}
    files = sorted(str(p.relative_to(tmp_path)) for p in _files(tmp_path, "*.parquet"))
    assert files == ["charging/day=2026-11-03/brand=harbor/part-11.parquet",
                     "charging/day=2026-11-03/brand=lumen/part-10.parquet",
                     "policy/day=2026-11-03/brand=lumen/part-10.parquet",
                     "purchase/day=2026-11-03/brand=lumen/part-10.parquet"]
    t = pq.read_table(tmp_path / files[1])
    assert t.schema == schema.SCHEMAS["charging"]
    assert t.schema.field("time").type == pa.timestamp("ms", tz="UTC")
    rows = sorted(t.to_pylist(), key=lambda r: r["edr_id"])
    assert [r["used_total"] for r in rows] == [1100, 16]
    assert rows[0]["debited"] == "bk1:1100" and rows[0]["time"] == T0
    pol = pq.read_table(tmp_path / files[2]).to_pylist()[0]
    assert (pol["speed_before_dl_kbps"], pol["speed_after_dl_kbps"]) == (20000, 128)
    assert not _files(tmp_path, ".tmp-*")  # nothing left half-written


async def test_reexport_replaces_and_removes_stale(db: Db, tmp_path: Path) -> None:
    await _seed(db)
    ex = Exporter(db, tmp_path)
    await ex.export(T0, T0 + timedelta(hours=2))
    await db.edrs.delete_one({"_id": "c3"})  # harbor has nothing in hour 11 any more
    await db.edrs.insert_one(h.charging("c4", T0, A, ul=1, dl=1))
    stats = await ex.export(T0, T0 + timedelta(hours=2))
    assert stats.files_removed == 1
    got = read_table(tmp_path, "charging")
    assert sorted(got.column("edr_id").to_pylist()) == ["c1", "c2", "c4"]
    # Again, unchanged: same rows, nothing duplicated.
    await ex.export(T0, T0 + timedelta(hours=2))
    assert read_table(tmp_path, "charging").num_rows == 3


async def test_brand_filter_touches_only_that_brand(db: Db, tmp_path: Path) -> None:
    await _seed(db)
    await Exporter(db, tmp_path).export(T0, T0 + timedelta(hours=2))
    await db.edrs.delete_many({"brand": "lumen", "kind": "charging"})
    await Exporter(db, tmp_path).export(T0, T0 + timedelta(hours=2), brand="harbor")
    assert read_table(tmp_path, "charging").num_rows == 3  # lumen's files were kept
    await Exporter(db, tmp_path).export(T0, T0 + timedelta(hours=2), brand="lumen")
    assert read_table(tmp_path, "charging").column("edr_id").to_pylist() == ["c3"]


async def test_csv_and_small_batches(db: Db, tmp_path: Path) -> None:
    docs = [h.charging(f"c{i}", T0 + timedelta(seconds=i), A, ul=i, dl=2 * i, ref=f"r{i % 7}")
            for i in range(1000)]
    await db.edrs.insert_many(docs)
    hour = T0 + timedelta(hours=1)
    await Exporter(db, tmp_path / "p", "parquet", batch_rows=100).export(T0, hour)
    await Exporter(db, tmp_path / "c", "csv", batch_rows=100).export(T0, hour)
    f = tmp_path / "p" / "charging" / "day=2026-11-03" / "brand=lumen" / "part-10.parquet"
    assert pq.ParquetFile(f).num_row_groups == 10
    p, c = read_table(tmp_path / "p", "charging"), read_table(tmp_path / "c", "charging")
    assert p.num_rows == c.num_rows == 1000
    assert sum(p.column("used_total").to_pylist()) == sum(c.column("used_total").to_pylist()) \
        == sum(3 * i for i in range(1000))


async def test_retention_index_is_a_ttl_index_and_follows_the_setting(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    await ReportsPart(Runtime(settings=settings, clock=clock, db=db)).ensure_indexes()
    info = await db.edrs.index_information()
    assert info[TTL_INDEX]["expireAfterSeconds"] == settings.edr.retention_days * 86_400
    await ensure_retention(db, 30)
    info = await db.edrs.index_information()
    assert info[TTL_INDEX]["expireAfterSeconds"] == 30 * 86_400


def _scheduled(settings: Settings, out: Path, schedule: str = "hourly") -> Settings:
    export = settings.edr.export.model_copy(update={
        "schedule": schedule, "dir": out, "delay_s": 60.0})
    return settings.model_copy(update={"edr": settings.edr.model_copy(
        update={"export": export})})


async def test_scheduled_export_each_closed_hour_once(
        db: Db, settings: Settings, tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 3, 10, 30, tzinfo=UTC))
    s = _scheduled(settings, tmp_path)
    # Two NF processes sharing the database and the directory.
    parts = [ReportsPart(Runtime(settings=s, clock=clock, db=db)) for _ in range(2)]
    assert [len(p.workers()) for p in parts] == [1, 1]
    assert await parts[0].export_round() == 0  # the first round only sets the marker
    marker = await db[MARKERS].find_one({"_id": MARKER_ID})
    assert marker is not None and marker["done_until"] == datetime(2026, 11, 3, 10, tzinfo=UTC)
    await _seed(db)
    clock.advance(30 * 60)  # 11:00: hour 10 closed, but not yet delay_s ago
    assert await parts[0].export_round() == 0
    clock.advance(2 * 3600 + 120)  # 13:02: hours 10, 11, 12 are due
    done = await asyncio.gather(*(p.export_round() for p in parts))
    assert sorted(done) == [0, 3]  # one process exported, the other found the lease held
    assert read_table(tmp_path, "charging").num_rows == 3
    marker = await db[MARKERS].find_one({"_id": MARKER_ID})
    assert marker is not None and marker["done_until"] == datetime(2026, 11, 3, 13, tzinfo=UTC)
    assert await parts[1].export_round() == 0  # nothing new is due


async def test_scheduled_export_takes_over_a_lapsed_lease(
        db: Db, settings: Settings, tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 3, 10, 30, tzinfo=UTC))
    s = _scheduled(settings, tmp_path)
    part = ReportsPart(Runtime(settings=s, clock=clock, db=db))
    await part.export_round()
    await _seed(db)
    # A process took the lease and died.
    await db[MARKERS].update_one({"_id": MARKER_ID}, {"$set": {
        "owner": "dead", "lease_until": clock.now() + timedelta(hours=1)}})
    clock.advance(1800 + 120)
    assert await part.export_round() == 0
    clock.advance(3600)
    assert await part.export_round() == 2
    assert read_table(tmp_path, "charging").num_rows == 3


def test_scheduled_export_needs_a_directory(settings: Settings) -> None:
    with pytest.raises(ValueError, match="needs dir"):
        settings.edr.export.model_validate({"schedule": "daily"})


def test_the_schema_document_is_current() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "EDR_SCHEMA.md").read_text()
    assert doc.endswith(schema.describe() + "\n"), "regenerate docs/EDR_SCHEMA.md"
