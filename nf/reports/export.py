"""Streaming export of the ``edrs`` collection into partitioned Parquet or CSV files.

The unit of work is one UTC hour: its EDRs are read with one range query on ``time``
(cursor batches, never the whole hour in memory), turned into rows per table and brand,
and written through Arrow writers that flush every ``batch_rows`` rows. The hour's files
are written under a temporary directory and moved into place with ``os.replace`` (atomic
per file) only once all of them are complete; files of that hour that the new export did
not produce (a brand with no EDRs any more) are removed. Exporting an hour again therefore
replaces it exactly: the export is idempotent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nf.errors import BadRequest
from nf.reports import schema
from nf.store.mongo import Db, translate_errors

Format = Literal["parquet", "csv"]
HOUR = timedelta(hours=1)
COLLECTION = "edrs"
# Cursor batches from the database (documents per round trip).
CURSOR_BATCH = 5_000


# The longest window one export covers: ``edr.retention_days``' upper bound.
MAX_HOURS = 3660 * 24


def floor_hour(t: datetime) -> datetime:
    t = t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    f = floor_hour(t)
    return f if f == (t if t.tzinfo else t.replace(tzinfo=UTC)) else f + HOUR


def hours(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours that cover ``[start, end)``, rounded outwards to whole hours."""
    if end <= start:
        return []
    h, stop = floor_hour(start), ceil_hour(end)
    out = []
    while h < stop:
        out.append(h)
        h += HOUR
    return out


def part_path(out: Path, table: str, hour: datetime, brand: str, fmt: Format) -> Path:
    return (out / table / f"day={hour:%Y-%m-%d}" / f"brand={brand}"
            / f"part-{hour:%H}.{fmt}")


class _Writer:
    """One file being written: rows buffered up to ``batch_rows``, then flushed."""

    def __init__(self, table: str, path: Path, fmt: Format) -> None:
        self.table = table
        self.path = path
        self.fmt = fmt
        self.pending: list[list[Any]] = []
        self.rows = 0
        self._w: pq.ParquetWriter | pacsv.CSVWriter | None = None

    def flush(self) -> None:
        if not self.pending:
            return
        batch = schema.to_arrow(self.table, self.pending)
        self.pending = []
        if self._w is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.fmt == "parquet":
                self._w = pq.ParquetWriter(self.path, schema.SCHEMAS[self.table],
                                           compression="zstd")
            else:
                self._w = pacsv.CSVWriter(self.path, schema.SCHEMAS[self.table])
        self._w.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> None:
        self.flush()
        if self._w is not None:
            self._w.close()
            self._w = None


@dataclass
class ExportStats:
    hours: int = 0
    edrs: int = 0
    skipped: int = 0  # documents of kinds that are not exported
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(schema.TABLES, 0))
    files_written: int = 0
    files_removed: int = 0


# Called after each hour: (hours done, hours in all, EDRs so far).
Progress = Callable[[int, int, int], None]


class Exporter:
    """Export ``[start, end)`` (whole hours) of one database into ``out``."""

    def __init__(self, db: Db, out: Path, fmt: Format = "parquet", *,
                 batch_rows: int = 50_000, progress: Progress | None = None) -> None:
        if fmt not in ("parquet", "csv"):
            raise BadRequest(f"unknown export format {fmt!r} (parquet or csv)")
        self._coll = db[COLLECTION]
        self.out = out
        self.fmt: Format = fmt
        self.batch_rows = batch_rows
        self._progress = progress

    async def export(self, start: datetime, end: datetime, brand: str | None = None
                     ) -> ExportStats:
        if end <= start:
            raise BadRequest("the export window is empty: --to must be after --from")
        stats = ExportStats()
        todo = hours(start, end)
        if len(todo) > MAX_HOURS:
            raise BadRequest(f"the export window covers {len(todo):,} hours; at most "
                             f"{MAX_HOURS:,} (the longest EDR retention) in one run")
        # Every hour is read by its own range on the ``time`` index, empty ones included
        # (an index probe): an empty hour writes nothing, and what an earlier export left
        # there is removed by ``_commit``. No query sorts the window (on the embedded
        # database a sorted range read costs a scan of the collection).
        for i, h in enumerate(todo):
            await self.export_hour(h, brand, stats)
            if self._progress is not None:
                self._progress(i + 1, len(todo), stats.edrs)
        return stats

    async def export_hour(self, hour: datetime, brand: str | None = None,
                          stats: ExportStats | None = None) -> ExportStats:
        stats = stats if stats is not None else ExportStats()
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / f".tmp-{uuid.uuid4().hex}"
        writers: dict[tuple[str, str], _Writer] = {}
        query: dict[str, Any] = {"time": {"$gte": hour, "$lt": hour + HOUR}}
        if brand is not None:
            query["brand"] = brand
        buffered = 0
        try:
            async with translate_errors("EDR export read"):
                cursor = self._coll.find(query, batch_size=min(CURSOR_BATCH, self.batch_rows))
                async for doc in cursor:
                    table = schema.table_of(doc)
                    if table is None:
                        stats.skipped += 1
                        continue
                    b = schema.brand_of(doc)
                    w = writers.get((table, b))
                    if w is None:
                        w = writers[(table, b)] = _Writer(
                            table, part_path(tmp, table, hour, b, self.fmt), self.fmt)
                    new = schema.rows(doc)
                    w.pending += new
                    buffered += len(new)
                    stats.edrs += 1
                    if len(w.pending) >= self.batch_rows:
                        buffered -= len(w.pending)
                        await asyncio.to_thread(w.flush)
                    if buffered >= 4 * self.batch_rows:  # many brands: bound the total too
                        await asyncio.to_thread(_flush_all, list(writers.values()))
                        buffered = 0
            await asyncio.to_thread(self._commit, tmp, hour, brand, writers, stats)
        finally:
            for w in writers.values():
                w.pending = []
            shutil.rmtree(tmp, ignore_errors=True)
        stats.hours += 1
        return stats

    def _commit(self, tmp: Path, hour: datetime, brand: str | None,
                writers: dict[tuple[str, str], _Writer], stats: ExportStats) -> None:
        for w in writers.values():
            w.close()
        written: set[tuple[str, str]] = set()
        for (table, b), w in writers.items():
            final = part_path(self.out, table, hour, b, self.fmt)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(w.path, final)
            written.add((table, b))
            stats.files_written += 1
            stats.rows[table] += w.rows
        # What an earlier export of this hour wrote and this one did not: remove it.
        for table in schema.TABLES:
            day_dir = self.out / table / f"day={hour:%Y-%m-%d}"
            if not day_dir.is_dir():
                continue
            for bdir in day_dir.glob("brand=*"):
                b = bdir.name.removeprefix("brand=")
                if (brand is not None and b != brand) or (table, b) in written:
                    continue
                for ext in ("parquet", "csv"):
                    stale = bdir / f"part-{hour:%H}.{ext}"
                    if stale.exists():
                        stale.unlink()
                        stats.files_removed += 1
        # The other format's file of the same hour would double count: remove it too.
        other = "csv" if self.fmt == "parquet" else "parquet"
        for (table, b) in written:
            twin = part_path(self.out, table, hour, b, self.fmt).with_suffix(f".{other}")
            if twin.exists():
                twin.unlink()
                stats.files_removed += 1


def _flush_all(writers: list[_Writer]) -> None:
    for w in writers:
        w.flush()


def read_table(out: Path, table: str) -> pa.Table:
    """Every exported file of ``table`` as one Arrow table (tests and small exports)."""
    files = sorted((out / table).glob("day=*/brand=*/part-*.*"))
    parts = []
    for f in files:
        t = pq.read_table(f) if f.suffix == ".parquet" else pacsv.read_csv(
            f, convert_options=pacsv.ConvertOptions(column_types=schema.SCHEMAS[table]))
        parts.append(t.cast(schema.SCHEMAS[table]))
    return pa.concat_tables(parts) if parts else schema.SCHEMAS[table].empty_table()
