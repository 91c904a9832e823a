"""``GET /provisioning/v1/reports/{report}`` on the OAM port (``openapi/provisioning.yaml``).

Same keys as provisioning: a brand's key sees only its brand (``brand`` defaults to it;
another brand is 403); the admin key sees all brands or the one asked for. Reports run
over ``edr.export.dir``; ``source=live`` reads the ``edrs`` collection instead, for at
most ``LIVE_MAX_DAYS`` days (today's figures before they are exported). One report at a
time per process; another one meanwhile is refused with 503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from quart import Blueprint, Response, request

from nf.catalog import CatalogHolder
from nf.errors import BadRequest, Congestion, Forbidden, InvalidParam
from nf.reports.port import Wallets
from nf.runtime import Runtime
from nf.sbi.responses import json_response
from nf.security.apikeys import api_scope

BASE = "/provisioning/v1/reports"
REPORTS = ("usage", "caps", "uptake", "roaming", "top")
LIVE_MAX_DAYS = 2
DEFAULT_DAYS = 7


def _day(name: str, default: date) -> date:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a day YYYY-MM-DD", cause="INVALID_QUERY_PARAM",
                         invalid_params=[InvalidParam(name, "not YYYY-MM-DD")]) from None


def reports_blueprint(rt: Runtime, ledger: Wallets | None,
                      catalog: CatalogHolder | None) -> Blueprint:
    bp = Blueprint("reports", __name__)
    busy = asyncio.Lock()

    @bp.get(f"{BASE}/<name>")
    async def report(name: str) -> Response:
        scope = api_scope(rt.api_keys)
        if name not in REPORTS:
            raise BadRequest(f"unknown report {name!r} ({', '.join(REPORTS)})",
                             cause="INVALID_QUERY_PARAM")
        brand = request.args.get("brand") or (None if scope == "*" else scope)
        if scope != "*" and brand != scope:
            raise Forbidden(f"this key may only see reports of brand {scope}")
        today = rt.clock.now().date()
        to = _day("to", today)
        frm = _day("from", to - timedelta(days=DEFAULT_DAYS - 1))
        fmt = request.args.get("format", "json")
        if fmt not in ("json", "csv", "png"):
            raise BadRequest("format must be json, csv or png", cause="INVALID_QUERY_PARAM")
        source = request.args.get("source", "export")
        if source not in ("export", "live"):
            raise BadRequest("source must be export or live", cause="INVALID_QUERY_PARAM")
        # DuckDB and Arrow are loaded on the first report, not by every NF process.
        from nf.reports.charts import render_chart
        from nf.reports.render import as_json, render
        from nf.reports.run import Request, run_report

        try:
            n = int(request.args.get("n", "10"))
        except ValueError:
            raise BadRequest("n must be a number", cause="INVALID_QUERY_PARAM") from None
        req = Request(name, frm, to, brand, n)
        req.check()
        live = source == "live"
        if live and (to - frm).days + 1 > LIVE_MAX_DAYS:
            raise BadRequest(f"source=live covers at most {LIVE_MAX_DAYS} days",
                             cause="INVALID_QUERY_PARAM")
        export_dir = rt.settings.edr.export.dir
        if not live and export_dir is None:
            raise BadRequest("no EDR export directory is configured (edr.export.dir); "
                             "use source=live for recent days", cause="INVALID_QUERY_PARAM")
        if busy.locked():
            raise Congestion("a report is being computed; retry shortly")
        async with busy:
            reports = await run_report(req, export_dir=export_dir, db=rt.db, ledger=ledger,
                                       catalog=catalog, now=rt.clock.now(), live=live)
        if fmt == "csv":
            return Response(render(reports, "csv"), 200, content_type="text/csv")
        if fmt == "png":
            png = await asyncio.to_thread(render_chart, reports[0], "png")
            return Response(png, 200, content_type="image/png")
        body = as_json(reports)
        body.update({"from": frm.isoformat(), "to": to.isoformat(), "brand": brand,
                     "source": source})
        return json_response(body)

    return bp
