"""Running a report: where the rows come from (an export directory, or the live
collection exported on the fly), the ledger lookups, and DuckDB in a worker thread."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from nf.catalog import CatalogHolder
from nf.catalog.model import RoamingPass
from nf.errors import BadRequest
from nf.ledger.state import Member, Wallet
from nf.reports import queries, wholesale
from nf.reports.export import Exporter
from nf.reports.port import Wallets
from nf.reports.queries import BucketInfo, PlanInfo, Report, ReportDb
from nf.store.mongo import Db

# Ledger lookups per report (subscribers whose plan or passes are named); beyond it the
# rest show as unknown.
LOOKUP_MAX = 100_000
LOOKUP_CONCURRENCY = 16


class LedgerLookup:
    """``queries.Lookup`` over the ledger, callable from the report's worker thread: each
    call runs on the event loop that owns the database client."""

    def __init__(self, ledger: Wallets, loop: asyncio.AbstractEventLoop,
                 now: datetime) -> None:
        self._ledger = ledger
        self._loop = loop
        self._now = now

    def _each(self, supis: Sequence[str]) -> list[tuple[str, tuple[Wallet, Member] | None]]:
        async def run() -> list[tuple[str, tuple[Wallet, Member] | None]]:
            sem = asyncio.Semaphore(LOOKUP_CONCURRENCY)

            async def one(s: str) -> tuple[str, tuple[Wallet, Member] | None]:
                async with sem:
                    return s, await self._ledger.wallet(s, self._now)

            return list(await asyncio.gather(*(one(s) for s in supis[:LOOKUP_MAX])))

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def plans(self, supis: Sequence[str]) -> dict[str, PlanInfo]:
        out = {}
        for supi, got in self._each(supis):
            if got is None:
                continue
            w, m = got
            terms = m.plan or w.family
            if terms is None:
                continue
            start = m.period_start if m.plan is not None else w.family_period_start
            out[supi] = PlanInfo(terms.offer_id, start, terms.period_days)
        return out

    def buckets(self, supis: Sequence[str]) -> dict[str, BucketInfo]:
        out = {}
        for _, got in self._each(supis):
            if got is None:
                continue
            w, _m = got
            for b in w.buckets:
                out[b.id] = BucketInfo(b.kind, b.offer_id, b.zone_name)
        return out


def zones(catalog: CatalogHolder | None) -> list[tuple[str, str, str]]:
    """(brand, PLMN, zone name) of every roaming pass in the catalogue."""
    if catalog is None:
        return []
    return [(brand, plmn, o.zone_name) for brand, o in catalog.current
            if isinstance(o, RoamingPass) for plmn in o.zone]


@dataclass(frozen=True)
class Request:
    name: str  # one of queries.REPORTS
    frm: date
    to: date
    brand: str | None = None
    n: int = 10  # top: how many per brand

    def check(self, max_days: int = 366) -> None:
        if self.name not in queries.REPORTS:
            raise BadRequest(f"unknown report {self.name!r} ({', '.join(queries.REPORTS)})")
        if self.to < self.frm:
            raise BadRequest("the report window is empty: to is before from")
        if (self.to - self.frm).days + 1 > max_days:
            raise BadRequest(f"a report covers at most {max_days} days")
        if not 1 <= self.n <= 10_000:
            raise BadRequest("n must be between 1 and 10000")


def _compute(export_dir: Path, req: Request, lookup: queries.Lookup | None,
             zone_rows: list[tuple[str, str, str]]) -> list[Report]:
    with ReportDb(export_dir) as db:
        if req.name == "usage":
            return [queries.usage(db, req.frm, req.to, req.brand)]
        if req.name == "uptake":
            return [queries.uptake(db, req.frm, req.to, req.brand)]
        if req.name == "top":
            return [queries.top(db, req.frm, req.to, req.brand, req.n)]
        if req.name == "caps":
            return [queries.caps(db, req.frm, req.to, req.brand, lookup)]
        return [queries.roaming(db, req.frm, req.to, req.brand, lookup, zone_rows)]


async def run_report(req: Request, *, export_dir: Path | None, db: Db | None = None,
                     ledger: Wallets | None = None, catalog: CatalogHolder | None = None,
                     now: datetime | None = None, live: bool = False) -> list[Report]:
    """Compute a report over ``export_dir``, or with ``live`` over the ``edrs`` collection
    (the window is exported to a temporary directory first)."""
    req.check()
    loop = asyncio.get_running_loop()
    now = now or datetime.now(UTC)
    lookup = LedgerLookup(ledger, loop, now) if ledger is not None else None
    if not live:
        if export_dir is None:
            raise BadRequest("no export directory: give one, or report from the live EDRs")
        return await asyncio.to_thread(_compute, export_dir, req, lookup, zones(catalog))
    if db is None:
        raise BadRequest("a live report needs the database")
    tmp = Path(tempfile.mkdtemp(prefix="nf-report-"))
    try:
        start = datetime.combine(req.frm, time(), UTC)
        await Exporter(db, tmp).export(start, datetime.combine(req.to, time(), UTC)
                                       + timedelta(days=1), req.brand)
        return await asyncio.to_thread(_compute, tmp, req, lookup, zones(catalog))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def run_wholesale(export_dir: Path, network: str, month: str, invoice: Path, *,
                        tolerance_bytes: int, tolerance_pct: float,
                        plmns: tuple[str, ...] = ()) -> list[Report]:
    def go() -> list[Report]:
        with ReportDb(export_dir) as db:
            return wholesale.reconcile(db, network, month, invoice,
                                       tolerance_bytes=tolerance_bytes,
                                       tolerance_pct=tolerance_pct, plmns=plmns)

    return await asyncio.to_thread(go)
