"""The reports: SQL over the exported tables, run by an in-process DuckDB.

``ReportDb(dir)`` opens views ``charging``, ``policy`` and ``purchase`` over the files under
an export directory (Parquet and CSV, Hive partitions ``day``/``brand`` pruned by the
filters). Each report is a function of the window (``frm``..``to``, whole UTC days, both
included), an optional brand and its own options, returning a ``Report`` (columns + rows).

Two reports need facts that EDRs do not carry: the subscriber's plan and period (cap
report) and which offer a debited bucket belongs to (roaming report). They are asked of a
``Lookup`` (the ledger, read-only); without one, plans show as ``(unknown)`` and passes
are named from the exported purchases only.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from nf.reports import schema

UNKNOWN = "(unknown)"
NO_PASS = "(no pass)"
REPORTS = ("usage", "caps", "uptake", "roaming", "top")

_DUCK_TYPES = {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int64(): "BIGINT"}


def _duck_type(t: pa.DataType) -> str:
    return "TIMESTAMP" if pa.types.is_timestamp(t) else _DUCK_TYPES[t]


@dataclass
class Report:
    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    summary: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


@dataclass(frozen=True)
class PlanInfo:
    plan: str
    period_start: datetime | None  # start of the current period
    period_days: int | None


@dataclass(frozen=True)
class BucketInfo:
    kind: str  # "plan", "addon", "roaming", "pool"
    offer_id: str
    zone_name: str | None


class Lookup(Protocol):
    """Facts from the ledger, asked for the subscribers a report found (bounded)."""

    def plans(self, supis: Sequence[str]) -> dict[str, PlanInfo]: ...

    def buckets(self, supis: Sequence[str]) -> dict[str, BucketInfo]: ...


def period_start_at(t: datetime, current_start: datetime, period_days: int) -> datetime:
    """The start of the period containing ``t``, periods being ``period_days`` long and
    one of them starting at ``current_start``."""
    span = timedelta(days=period_days)
    k = (t - current_start) // span
    return current_start + k * span


class ReportDb:
    """DuckDB views over one export directory. Not thread-safe: one per report run."""

    def __init__(self, export_dir: Path, *, memory_limit_mb: int = 1024,
                 threads: int = 2) -> None:
        self.dir = export_dir
        self.con = duckdb.connect(":memory:", config={
            "memory_limit": f"{memory_limit_mb}MB", "threads": threads})
        for t in schema.TABLES:
            self._view(t)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ReportDb:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _view(self, table: str) -> None:
        cols = {n: _duck_type(ty) for n, ty, _ in schema.COLUMNS[table]}
        # By name: files exported before a column was added (``interface``) lack it.
        hive = "hive_partitioning=true, hive_types={'day': 'DATE', 'brand': 'VARCHAR'}, " \
            "union_by_name=true"
        base = self.dir / table
        sources = []
        if any(base.glob("day=*/brand=*/part-*.parquet")):
            # Times as naive UTC TIMESTAMP: time zones would need DuckDB's ICU extension.
            sources.append(f"SELECT * REPLACE (CAST(time AS TIMESTAMP) AS time) FROM "
                           f"read_parquet('{_q(base)}/*/*/*.parquet', {hive})")
        if any(base.glob("day=*/brand=*/part-*.csv")):
            spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in cols.items()) + "}"
            sources.append(f"SELECT * FROM read_csv('{_q(base)}/*/*/*.csv', header=true, "
                           f"types={spec}, {hive})")
        if not sources:
            decl = ", ".join(f"{n} {t}" for n, t in cols.items())
            self.con.execute(f"CREATE TABLE {table} ({decl}, day DATE, brand VARCHAR)")
            return
        self.con.execute(f"CREATE VIEW {table} AS " + " UNION ALL BY NAME ".join(sources))

    def query(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self.con.execute(sql, params)
        cols = [d[0] for d in cur.description or []]
        return cols, [tuple(r) for r in cur.fetchall()]


def _q(p: Path) -> str:
    return str(p).replace("'", "''")


def _where(brand: str | None, alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    w = f"{a}day BETWEEN $frm AND $to"
    return w + (f" AND {a}brand = $brand" if brand is not None else "")


def _params(frm: date, to: date, brand: str | None, **more: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"frm": frm, "to": to, **more}
    if brand is not None:
        p["brand"] = brand
    return p


def usage(db: ReportDb, frm: date, to: date, brand: str | None = None) -> Report:
    """Bytes up/down/total, sessions and subscribers per brand x host network x day, and
    per interface (``sbi``: 5G Nchf; ``gy``: 4G Diameter)."""
    cols, rows = db.query(f"""
        SELECT day, brand, host_network,
               sum(used_ul)::BIGINT AS bytes_ul, sum(used_dl)::BIGINT AS bytes_dl,
               sum(used_total)::BIGINT AS bytes_total,
               count(DISTINCT charging_data_ref) AS sessions,
               count(DISTINCT supi) AS subscribers,
               coalesce(interface, 'sbi') AS interface
        FROM charging WHERE {_where(brand)}
        GROUP BY ALL ORDER BY day, brand, host_network, interface
    """, _params(frm, to, brand))
    return Report("usage", cols, rows)


def uptake(db: ReportDb, frm: date, to: date, brand: str | None = None) -> Report:
    """Purchases per offer and brand per day, revenue in the offer's currency."""
    cols, rows = db.query(f"""
        SELECT day, brand, offer_id, offer_kind, currency, count(*) AS purchases,
               sum(price_cents)::BIGINT AS revenue_minor,
               (sum(price_cents) / 100)::DECIMAL(18, 2) AS revenue
        FROM purchase WHERE {_where(brand)}
        GROUP BY ALL ORDER BY day, brand, offer_id
    """, _params(frm, to, brand))
    return Report("uptake", cols, rows)


def top(db: ReportDb, frm: date, to: date, brand: str | None = None, n: int = 10) -> Report:
    """The ``n`` subscribers with the most usage per brand (fraud, network planning)."""
    cols, rows = db.query(f"""
        WITH u AS (
            SELECT brand, supi, max(gpsi) AS gpsi, sum(used_total)::BIGINT AS bytes_total,
                   sum(used_ul)::BIGINT AS bytes_ul, sum(used_dl)::BIGINT AS bytes_dl,
                   count(DISTINCT charging_data_ref) AS sessions,
                   count(DISTINCT host_network) AS networks,
                   bool_or(roaming) AS roamed
            FROM charging WHERE {_where(brand)} GROUP BY brand, supi)
        SELECT brand, rank, supi, gpsi, bytes_total, bytes_ul, bytes_dl, sessions, networks,
               roamed
        FROM (SELECT *, row_number() OVER (PARTITION BY brand
                                           ORDER BY bytes_total DESC, supi) AS rank FROM u)
        WHERE rank <= $n ORDER BY brand, rank
    """, _params(frm, to, brand, n=n))
    return Report("top", cols, rows)


def caps(db: ReportDb, frm: date, to: date, brand: str | None = None,
         lookup: Lookup | None = None) -> Report:
    """Subscribers who reached their cap (blocked: final units or refused; throttled: the
    throttled allowance or a PCF throttle) per brand and plan, and the hours from the start
    of their period to the first time they reached it in the window."""
    _, found = db.query(f"""
        WITH ev AS (
            SELECT brand, supi, time, throttled AS thr,
                   (final OR coalesce(unit_result, '') = 'QUOTA_LIMIT_REACHED') AS blk
            FROM charging WHERE {_where(brand)}
              AND (throttled OR final OR coalesce(unit_result, '') = 'QUOTA_LIMIT_REACHED')
            UNION ALL
            SELECT brand, supi, time, true, false FROM policy
            WHERE {_where(brand)} AND event = 'throttled')
        SELECT brand, supi, min(time), bool_or(thr), bool_or(blk)
        FROM ev GROUP BY brand, supi ORDER BY brand, supi
    """, _params(frm, to, brand))
    plans = lookup.plans([r[1] for r in found]) if lookup is not None and found else {}
    groups: dict[tuple[str, str], list[tuple[bool, bool, float | None]]] = {}
    for b, supi, first_naive, thr, blk in found:
        first = first_naive.replace(tzinfo=UTC)  # stored and read as naive UTC
        info = plans.get(supi)
        hours = None
        if info is not None and info.period_start is not None and info.period_days:
            start = period_start_at(first, info.period_start, info.period_days)
            hours = (first - start).total_seconds() / 3600
        groups.setdefault((b, info.plan if info else UNKNOWN), []).append(
            (bool(thr), bool(blk), hours))
    rows = []
    for (b, plan), subs in sorted(groups.items()):
        hs = [h for _, _, h in subs if h is not None]
        rows.append((b, plan, len(subs), sum(1 for t, _, _ in subs if t),
                     sum(1 for t, k, _ in subs if k and not t),
                     _round(min(hs)) if hs else None,
                     _round(statistics.median(hs)) if hs else None,
                     _round(max(hs)) if hs else None))
    return Report("caps", ["brand", "plan", "subscribers", "throttled", "blocked",
                           "hours_to_cap_min", "hours_to_cap_median", "hours_to_cap_max"],
                  rows)


def _round(x: float) -> float:
    return round(x, 2)


def roaming(db: ReportDb, frm: date, to: date, brand: str | None = None,
            lookup: Lookup | None = None, zones: Sequence[tuple[str, str, str]] = ()
            ) -> Report:
    """Roaming usage per zone and pass. Usage is attributed to the buckets it was debited
    from: a roaming pass by its offer id, anything else (plan, add-ons, overage) as
    ``(no pass)``. The zone is the pass's zone, else the catalogue zone of the visited PLMN
    (``zones``: brand, PLMN, zone name), else the PLMN itself."""
    where = _where(brand)
    params = _params(frm, to, brand)
    passes: dict[str, tuple[str, str | None]] = {}
    _, bought = db.query(f"""
        SELECT DISTINCT unnest(string_split(bucket_ids, ';')) AS b, offer_id, zone_name
        FROM purchase WHERE offer_kind = 'roaming_pass' AND day <= $to
        {"AND brand = $brand" if brand is not None else ""}
    """, {k: v for k, v in params.items() if k != "frm"})
    for b, offer, zone in bought:
        if b:
            passes[b] = (offer, zone)
    if lookup is not None:
        _, who = db.query(f"""
            SELECT DISTINCT supi FROM charging WHERE {where} AND roaming
        """, params)
        for bid, info in lookup.buckets([r[0] for r in who]).items():
            if info.kind == "roaming" and bid not in passes:
                passes[bid] = (info.offer_id, info.zone_name)
    pass_table = pa.table({
        "bucket_id": pa.array(list(passes), pa.string()),
        "offer_id": pa.array([p[0] for p in passes.values()], pa.string()),
        "zone_name": pa.array([p[1] for p in passes.values()], pa.string())})
    zone_table = pa.table({
        "brand": pa.array([z[0] for z in zones], pa.string()),
        "plmn": pa.array([z[1] for z in zones], pa.string()),
        "zone_name": pa.array([z[2] for z in zones], pa.string())})
    db.con.register("passes_t", pass_table)
    db.con.register("zones_t", zone_table)
    try:
        cols, rows = db.query(f"""
            WITH r AS (SELECT * FROM charging WHERE {where} AND roaming),
            deb AS (
                SELECT brand, serving_plmn, supi, charging_data_ref,
                       unnest(string_split(debited, ';')) AS d FROM r),
            parts AS (
                SELECT brand, serving_plmn, supi, charging_data_ref,
                       split_part(d, ':', 1) AS bucket_id,
                       CAST(split_part(d, ':', 2) AS BIGINT) AS bytes
                FROM deb WHERE d <> ''
                UNION ALL
                SELECT brand, serving_plmn, supi, charging_data_ref, NULL, overage
                FROM r WHERE overage > 0),
            z AS (SELECT brand, plmn, min(zone_name) AS zone_name FROM zones_t
                  GROUP BY brand, plmn)
            SELECT parts.brand,
                   coalesce(p.zone_name, z.zone_name, 'plmn ' || parts.serving_plmn) AS zone,
                   coalesce(p.offer_id, '{NO_PASS}') AS pass,
                   sum(bytes)::BIGINT AS bytes, count(DISTINCT supi) AS subscribers,
                   count(DISTINCT charging_data_ref) AS sessions
            FROM parts LEFT JOIN passes_t p ON p.bucket_id = parts.bucket_id
                       LEFT JOIN z ON z.brand = parts.brand AND z.plmn = parts.serving_plmn
            GROUP BY ALL ORDER BY 1, 2, 3
        """, params)
    finally:
        db.con.unregister("passes_t")
        db.con.unregister("zones_t")
    return Report("roaming", cols, rows)
