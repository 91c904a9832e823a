"""The reports over exported EDRs: each report's figures, the ledger lookups (plans,
passes), rendering, charts, the wholesale reconciliation and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.errors import BadRequest
from nf.reports import queries, wholesale
from nf.reports.charts import write_chart
from nf.reports.export import Exporter
from nf.reports.queries import ReportDb, period_start_at
from nf.reports.render import render
from nf.reports.run import Request, run_report
from nf.store.mongo import Db
from tests.ledger import helpers as lh
from tests.reports import helpers as h

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
DAY = date(2026, 11, 3)
MIB = h.MIB
S1, S2, S3 = "imsi-001010000000101", "imsi-001010000000102", "imsi-001020000000103"


def test_period_start_at() -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    assert period_start_at(datetime(2026, 10, 5, tzinfo=UTC), start, 30) == start
    assert period_start_at(datetime(2026, 11, 2, tzinfo=UTC), start, 30) \
        == datetime(2026, 10, 31, tzinfo=UTC)
    assert period_start_at(datetime(2026, 9, 20, tzinfo=UTC), start, 30) \
        == datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture
async def exported(db: Db, tmp_path: Path) -> Path:
    a, b = h.party(S1), h.party(S2)
    c = h.party(S3, "harbor", "bluepeak", "00102")
    await db.edrs.insert_many([
        h.charging("a1", T0, a, ul=MIB, dl=4 * MIB, ref="ra"),
        h.charging("a2", T0 + timedelta(hours=1), a, ul=MIB, dl=2 * MIB, ref="ra"),
        h.charging("a3", T0 + timedelta(days=1), a, ul=5, dl=5, ref="ra2"),
        h.charging("b1", T0, b, ul=10, dl=20, ref="rb", final=True),
        h.charging("c1", T0, c, ul=3 * MIB, dl=3 * MIB, ref="rc"),
        h.throttle("p1", T0 + timedelta(hours=2), c),
        h.purchase("u1", T0, a, "lumen-addon-1gb-7d"),
        h.purchase("u2", T0 + timedelta(hours=3), b, "lumen-addon-1gb-7d"),
        h.purchase("u3", T0, c, "harbor-roam-north-1gb-1d", kind="roaming_pass", price=450,
                   buckets=("pb1",), zone="north zone"),
        h.charging("r1", T0, h.party(S3, "harbor", "bluepeak", "99970", roaming=True),
                   ul=0, dl=700, ref="rr", debited=(("pb1", 600),), overage=100),
        h.charging("r2", T0, h.party(S2, serving="99971", roaming=True), ul=0, dl=50,
                   ref="rr2", debited=(("plan-x", 50),)),
    ])
    await Exporter(db, tmp_path).export(T0, T0 + timedelta(days=2))
    return tmp_path


def _one(report: queries.Report, **match: object) -> dict[str, object]:
    got = [r for r in report.records() if all(r[k] == v for k, v in match.items())]
    assert len(got) == 1, got
    return got[0]


async def test_usage_uptake_top(exported: Path) -> None:
    with ReportDb(exported) as db:
        u = queries.usage(db, DAY, DAY)
        lumen = _one(u, brand="lumen")
        assert lumen["bytes_total"] == 8 * MIB + 30 + 50
        assert (lumen["sessions"], lumen["subscribers"]) == (3, 2)
        assert _one(u, brand="harbor")["bytes_total"] == 6 * MIB + 700
        assert len(queries.usage(db, DAY, DAY + timedelta(days=1)).rows) == 3
        assert queries.usage(db, DAY, DAY, "harbor").records()[0]["brand"] == "harbor"
        up = queries.uptake(db, DAY, DAY)
        addon = _one(up, offer_id="lumen-addon-1gb-7d")
        assert (addon["purchases"], addon["revenue_minor"], str(addon["revenue"])) \
            == (2, 600, "6.00")
        t = queries.top(db, DAY, DAY + timedelta(days=1), n=1)
        assert [(r["brand"], r["supi"]) for r in t.records()] == [("harbor", S3),
                                                                   ("lumen", S1)]


async def test_caps_with_plans_from_the_ledger(db: Db, settings: Settings,
                                               exported: Path) -> None:
    ledger = lh.make_ledger(db, settings)
    start = T0 - timedelta(hours=30)
    await lh.subscriber(ledger, start, S2, lh.DEMO_CAPPED)
    await lh.subscriber(ledger, start, S3, "harbor-unlimited", brand="harbor",
                        network="bluepeak")
    got = await run_report(Request("caps", DAY, DAY), export_dir=exported, ledger=ledger,
                           now=T0 + timedelta(hours=3))
    assert got[0].records() == [
        {"brand": "harbor", "plan": "harbor-unlimited", "subscribers": 1, "throttled": 1,
         "blocked": 0, "hours_to_cap_min": 32.0, "hours_to_cap_median": 32.0,
         "hours_to_cap_max": 32.0},
        {"brand": "lumen", "plan": lh.DEMO_CAPPED, "subscribers": 1, "throttled": 0,
         "blocked": 1, "hours_to_cap_min": 30.0, "hours_to_cap_median": 30.0,
         "hours_to_cap_max": 30.0}]
    without = await run_report(Request("caps", DAY, DAY), export_dir=exported)
    assert {r["plan"] for r in without[0].records()} == {queries.UNKNOWN}


async def test_roaming_per_zone_and_pass(settings: Settings, exported: Path) -> None:
    assert settings.catalog_dir is not None
    catalog = CatalogHolder.from_dir(settings.catalog_dir)
    got = await run_report(Request("roaming", DAY, DAY), export_dir=exported,
                           catalog=catalog)
    rows = {(r["brand"], r["zone"], r["pass"]): r["bytes"] for r in got[0].records()}
    assert rows == {("harbor", "north zone", "harbor-roam-north-1gb-1d"): 600,
                    ("harbor", "north zone", queries.NO_PASS): 100,
                    ("lumen", "south zone", queries.NO_PASS): 50}


async def test_render_and_charts(exported: Path, tmp_path: Path) -> None:
    with ReportDb(exported) as db:
        u = queries.usage(db, DAY, DAY + timedelta(days=1))
        up = queries.uptake(db, DAY, DAY)
    as_json = json.loads(render([u], "json"))
    assert as_json["report"] == "usage" and as_json["rows"][0]["day"] == "2026-11-03"
    csv_lines = render([u], "csv").splitlines()
    assert csv_lines[0].startswith("day,brand,host_network,bytes_ul")
    assert len(csv_lines) == 4
    table = render([u], "table")
    assert "usage (3 rows)" in table and "northwind" in table
    write_chart(u, tmp_path / "usage.png")
    write_chart(up, tmp_path / "uptake.html")
    assert (tmp_path / "usage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "uptake.html").read_text()
    with pytest.raises(BadRequest):
        write_chart(queries.Report("top", [], []), tmp_path / "x.png")


def _invoice(path: Path, lines: list[str]) -> Path:
    path.write_text("day,plmn,subscriber,bytes\n" + "".join(f"{x}\n" for x in lines))
    return path


async def test_wholesale_finds_what_was_planted(exported: Path, tmp_path: Path) -> None:
    inv = _invoice(tmp_path / "inv.csv", [
        f"2026-11-03,00101,{S1},{9 * MIB}",  # planted: 1 MiB more than the EDRs
        "2026-11-03,00101,msisdn-0000000102,85",  # S2 by GPSI: +5 bytes, within tolerance
        "2026-11-04,00101,001010000000101,10",  # S1, bare IMSI: equal
        "2026-11-05,00101,imsi-001010000000999,4096",  # planted: not in our EDRs
        "2026-12-01,00101,imsi-001010000000101,1",  # outside the month
    ])
    with ReportDb(exported) as db:
        totals, diffs, inv_only, edr_only = wholesale.reconcile(
            db, "northwind", "2026-11", inv, tolerance_bytes=100, tolerance_pct=0.0,
            plmns=("00101",))
    t = totals.records()[0]
    assert (t["invoice_bytes"], t["edr_bytes"]) == (9 * MIB + 85 + 10 + 4096,
                                                    8 * MIB + 10 + 30 + 50)
    assert (t["lines_outside_month"], t["lines_other_plmn"]) == (1, 0)
    assert [(r["subscriber"], r["difference_bytes"]) for r in diffs.records()] \
        == [(S1, MIB)]
    assert [r["subscriber"] for r in inv_only.records()] == ["imsi-001010000000999"]
    assert edr_only.rows == []


async def test_wholesale_refuses_a_bad_invoice(exported: Path, tmp_path: Path) -> None:
    with ReportDb(exported) as db, pytest.raises(BadRequest, match="invoice"):
        wholesale.reconcile(db, "northwind", "2026-11",
                            _invoice(tmp_path / "bad.csv", ["yesterday,00101,imsi-1,5"]))
    with ReportDb(exported) as db, pytest.raises(BadRequest, match="YYYY-MM"):
        wholesale.reconcile(db, "northwind", "November", tmp_path / "bad.csv")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env["NF_CONFIG"] = str(ROOT / "tests" / "data" / "nf-test.yaml")
    return env


def test_cli_report_and_chart(exported: Path, tmp_path: Path) -> None:
    chart = tmp_path / "usage.png"
    r = subprocess.run([sys.executable, "-m", "nf.cli", "report", "usage", "--dir",
                        str(exported), "--from", "2026-11-03", "--to", "2026-11-04",
                        "--format", "json", "--chart", str(chart)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120, env=_env())
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["rows"]) == 3 and chart.stat().st_size > 1000
    r = subprocess.run([sys.executable, "-m", "nf.cli", "report", "wholesale", "--dir",
                        str(exported), "--network", "northwind", "--month", "2026-13",
                        "--invoice", str(chart)], capture_output=True, text=True, cwd=ROOT,
                       timeout=120, env=_env())
    assert r.returncode == 2 and "error:" in r.stderr
