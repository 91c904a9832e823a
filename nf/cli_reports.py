"""The ``nf edr …`` (export, seed, schema) and ``nf report …`` (the reports, wholesale)
commands: the command line of ``nf.reports``, which builds what the reports read from."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from nf.config import Settings
from nf.errors import ConfigError, NfError

edr_cli = typer.Typer(no_args_is_help=True, help="Event detail records: export, seed, schema.")
report_cli = typer.Typer(no_args_is_help=True,
                         help="Reports over exported EDRs (DuckDB), wholesale reconciliation.")

T = TypeVar("T")
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")]
FmtOpt = Annotated[str, typer.Option("--format", "-f", help="table, csv or json")]
DirOpt = Annotated[Path | None, typer.Option(
    "--dir", help="export directory [config: edr.export.dir]")]


def _settings(config: Path | None) -> Settings:
    try:
        return Settings.load(config)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except NfError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(2) from None


def _when(raw: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{name}: not an ISO date or time: {raw!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _day(raw: str | None, default: date) -> date:
    return default if raw is None else _when(raw, "day").date()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _bar(total: int, what: str) -> Iterator[Callable[[int, int, int], None]]:
    """A progress bar on a terminal (stderr); nothing when not a terminal. Yields
    ``update(done, total, edrs)``."""
    if not sys.stderr.isatty():
        yield lambda done, total, n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[extra]}"), TimeElapsedColumn(),
                  TimeRemainingColumn(), transient=False) as p:
        task = p.add_task(what, total=total, extra="")
        yield lambda done, total, n: p.update(task, completed=done, total=total,
                                              extra=f"{n:,} EDRs")


async def _with_db(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(db)``; the EDRs' time index (the TTL index, as the NF makes it) first."""
    from nf.reports.part import ensure_retention
    from nf.store.mongo import make_client

    client = make_client(settings)
    try:
        db = client[settings.mongodb_database]
        await _first_read(db, settings.mongodb_startup_timeout_s)
        await ensure_retention(db, settings.edr.retention_days)
        return await fn(db)
    finally:
        await client.close()


async def _first_read(db: Any, timeout_s: float) -> None:
    """The EDRs' first read after the database opened them, waited for under the start-up
    timeout (``mongodb_startup_timeout_s``) with a line every 10 s, instead of failing at
    the per-operation timeout: the embedded database loads a collection on its first read
    after a start, which takes minutes for tens of millions of EDRs."""
    import pymongo

    from nf.reports.part import COLLECTION
    from nf.store.mongo import translate_errors

    t0 = time.monotonic()

    async def tell() -> None:
        while True:
            await asyncio.sleep(10)
            typer.echo(f"waiting for the database's first read of the EDRs "
                       f"({time.monotonic() - t0:.0f} s)", err=True)

    ticker = asyncio.create_task(tell())
    try:
        with pymongo.timeout(timeout_s):
            async with translate_errors("EDR first read"):
                await db[COLLECTION].find_one({}, {"_id": 1})  # no sort: a scan at scale
    finally:
        ticker.cancel()
    took = time.monotonic() - t0
    if took >= 10:
        typer.echo(f"the database's first read of the EDRs took {took:.0f} s", err=True)


@edr_cli.command("export")
def export(
    from_: Annotated[str, typer.Option("--from", help="start (ISO date or time, UTC)")],
    to: Annotated[str, typer.Option("--to", help="end, excluded (ISO date or time, UTC)")],
    out: Annotated[Path, typer.Option("--out", help="export directory")],
    brand: Annotated[str | None, typer.Option(help="only this brand")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    batch_rows: Annotated[int, typer.Option(help="rows buffered per file", min=100)
                          ] = 50_000,
    config: ConfigOpt = None,
) -> None:
    """Export EDRs of [--from, --to) (rounded out to whole UTC hours) into
    <out>/<table>/day=…/brand=…/part-HH.<format>. Exporting again replaces what it covers."""
    from nf.reports.export import Exporter, hours

    settings = _settings(config)
    start, end = _when(from_, "--from"), _when(to, "--to")
    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter("--format must be parquet or csv")
    oldest = datetime.now(UTC) - timedelta(days=settings.edr.retention_days)
    if start < oldest:
        typer.echo(f"warning: EDRs older than {settings.edr.retention_days} days "
                   f"(before {oldest:%Y-%m-%d %H:%M}) have expired from the database", err=True)
    t0 = time.monotonic()
    with _bar(len(hours(start, end)), "exporting hours") as bar:
        stats = _run(_with_db(settings, lambda db: Exporter(
            db, out, "csv" if fmt == "csv" else "parquet", batch_rows=batch_rows,
            progress=bar).export(start, end, brand)))
    dt = time.monotonic() - t0
    rows = ", ".join(f"{k}={v}" for k, v in stats.rows.items())
    typer.echo(f"exported {stats.edrs:,} EDRs ({rows}) of {stats.hours} hours into {out}: "
               f"{stats.files_written} files written, {stats.files_removed} removed; "
               f"{dt:.1f} s, {stats.edrs / dt if dt else 0:,.0f} EDRs/s, "
               f"peak RSS {peak_rss_mib():.0f} MiB")


@edr_cli.command("seed")
def seed(
    count: Annotated[int, typer.Option(help="how many EDRs", min=1)] = 1_000_000,
    days: Annotated[int, typer.Option(help="spread over the last N days", min=1)] = 7,
    subscribers: Annotated[int, typer.Option(min=1)] = 1_000_000,
    seed_: Annotated[int, typer.Option("--seed")] = 1,
    config: ConfigOpt = None,
) -> None:
    """Insert synthetic EDRs in bulk straight into the database (scale measurements only:
    real EDRs come from the CHF and PCF)."""
    from nf.reports.seed import seed_edrs

    settings = _settings(config)
    brands = ["lumen", "harbor", "cartwheel", "nimbus", "pebble", "orbit", "tidal", "sprout",
              "quarry"]
    sales: dict[str, list[tuple[str, str, int, str, str | None]]] = {}
    if settings.catalog_dir is not None:
        from nf.catalog import load_catalog

        cat = load_catalog(settings.catalog_dir)
        brands = sorted(cat.brands) or brands
        for b, o in cat:
            if o.kind != "plan":
                sales.setdefault(b, []).append((o.id, o.kind, o.price_cents, o.currency,
                                                getattr(o, "zone_name", None)))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    t0 = time.monotonic()
    with _bar(count, "seeding EDRs") as bar:
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            bar(done[0], count, done[0])

        n = _run(_with_db(settings, lambda db: seed_edrs(
            db, settings, count=count, start=start, end=end, subscribers=subscribers,
            brands=brands, seed=seed_, sales=sales, progress=tick)))
    dt = time.monotonic() - t0
    typer.echo(f"seeded {n:,} new EDRs ({count:,} asked) from {start:%Y-%m-%d %H:%M} to "
               f"{end:%Y-%m-%d %H:%M} UTC in {dt:.1f} s ({count / dt:,.0f}/s)")


@edr_cli.command("schema")
def schema_cmd() -> None:
    """Print the exported tables' columns (Markdown)."""
    from nf.reports.schema import describe

    typer.echo(describe())


def _emit(reports: list[Any], fmt: str, output: Path | None) -> None:
    from nf.reports.render import render

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    text = render(reports, fmt)  # type: ignore[arg-type]
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _report(name: str) -> Callable[..., None]:
    def command(
        from_: Annotated[str | None, typer.Option("--from", help="first day [to - 6]")] = None,
        to: Annotated[str | None, typer.Option("--to", help="last day, included [today]")
                      ] = None,
        brand: Annotated[str | None, typer.Option(help="only this brand")] = None,
        directory: DirOpt = None,
        live: Annotated[bool, typer.Option(
            "--live", help="read the edrs collection instead of the export")] = False,
        n: Annotated[int, typer.Option("--n", help="top: subscribers per brand")] = 10,
        fmt: FmtOpt = "table",
        output: Annotated[Path | None, typer.Option("--output", "-o", help="file")] = None,
        chart: Annotated[Path | None, typer.Option(
            help="also draw a chart (.png, .svg, .html); usage and uptake")] = None,
        ledger: Annotated[bool, typer.Option(
            help="name plans and passes from the ledger (caps, roaming)")] = True,
        config: ConfigOpt = None,
    ) -> None:
        from nf.reports.run import Request, run_report

        settings = _settings(config)
        last = _day(to, datetime.now(UTC).date())
        req = Request(name, _day(from_, last - timedelta(days=6)), last, brand, n)
        export_dir = directory or settings.edr.export.dir
        if export_dir is None and not live:
            typer.echo("error: no export directory (--dir or edr.export.dir); or use --live",
                       err=True)
            raise typer.Exit(2)

        async def go() -> list[Any]:
            from nf.catalog import CatalogHolder
            from nf.ledger.mongo import MongoLedger
            from nf.store.mongo import make_client

            catalog = CatalogHolder.from_dir(settings.catalog_dir) \
                if settings.catalog_dir is not None else None
            needs_db = live or (ledger and name in ("caps", "roaming"))
            if not needs_db:
                return await run_report(req, export_dir=export_dir, catalog=catalog)
            client = make_client(settings)
            try:
                db = client[settings.mongodb_database]
                led = MongoLedger(db, settings, catalog or CatalogHolder.empty()) \
                    if ledger else None
                return await run_report(req, export_dir=export_dir, db=db, ledger=led,
                                        catalog=catalog, live=live)
            finally:
                await client.close()

        reports = _run(go())
        _emit(reports, fmt, output)
        if chart is not None:
            from nf.reports.charts import write_chart

            try:
                write_chart(reports[0], chart)
            except NfError as e:
                typer.echo(f"error: {e.detail}", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"chart: {chart}", err=True)

    command.__doc__ = {
        "usage": "Usage per brand x host network x day: bytes up/down, sessions, "
                 "subscribers.",
        "caps": "Subscribers who reached their cap or were throttled, per brand and plan, "
                "and hours from period start to the cap.",
        "uptake": "Purchases per offer and brand per day, revenue in the offer's currency.",
        "roaming": "Roaming usage per brand, zone and pass.",
        "top": "Top N subscribers by usage per brand.",
    }[name]
    return command


for _name in ("usage", "caps", "uptake", "roaming", "top"):
    report_cli.command(_name)(_report(_name))


@report_cli.command("wholesale")
def wholesale_cmd(
    network: Annotated[str, typer.Option(help="host network id")],
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    invoice: Annotated[Path, typer.Option(help="the host network's usage file (CSV: "
                                                "day,plmn,subscriber,bytes)")],
    directory: DirOpt = None,
    tolerance_bytes: Annotated[int, typer.Option(min=0)] = 1_048_576,
    tolerance_pct: Annotated[float, typer.Option(min=0.0, max=100.0)] = 0.5,
    fmt: FmtOpt = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file")] = None,
    config: ConfigOpt = None,
) -> None:
    """Compare a host network's usage file with the EDRs, per subscriber and day: totals,
    differences above the tolerance, subscribers on one side only."""
    from nf.reports.run import run_wholesale

    settings = _settings(config)
    export_dir = directory or settings.edr.export.dir
    if export_dir is None:
        typer.echo("error: no export directory (--dir or edr.export.dir)", err=True)
        raise typer.Exit(2)
    net = settings.network(network)
    if settings.networks and net is None:
        typer.echo(f"error: no host network {network!r} in the configuration", err=True)
        raise typer.Exit(2)
    plmns = tuple(net.plmn_ids) if net is not None else ()
    reports = _run(run_wholesale(export_dir, network, month, invoice,
                                 tolerance_bytes=tolerance_bytes, tolerance_pct=tolerance_pct,
                                 plmns=plmns))
    _emit(reports, fmt, output)
