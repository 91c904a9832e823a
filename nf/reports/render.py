"""Reports as text: an aligned table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from nf.reports.queries import Report

Output = Literal["table", "csv", "json"]


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    return str(_plain(v))


def as_json(reports: Sequence[Report]) -> Any:
    def one(r: Report) -> dict[str, Any]:
        out: dict[str, Any] = {"report": r.name,
                               "rows": [{k: _plain(v) for k, v in rec.items()}
                                        for rec in r.records()]}
        if r.summary:
            out["summary"] = r.summary
        return out

    return one(reports[0]) if len(reports) == 1 else {r.name: one(r) for r in reports}


def render(reports: Sequence[Report], fmt: Output) -> str:
    if fmt == "json":
        return json.dumps(as_json(reports), indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        several = len(reports) > 1
        for r in reports:
            if several:
                buf.write(f"# {r.name}\n")
            w.writerow(r.columns)
            for row in r.rows:
                w.writerow(["" if v is None else _plain(v) for v in row])
        return buf.getvalue()
    parts = []
    for r in reports:
        cells = [[_cell(v) for v in row] for row in r.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells])
                  for i, c in enumerate(r.columns)]
        numeric = [all(isinstance(row[i], int | float | Decimal) or row[i] is None
                       for row in r.rows) and bool(r.rows) for i in range(len(r.columns))]

        def line(vals: list[str], widths: list[int] = widths,
                 numeric: list[bool] = numeric) -> str:
            return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w)
                             for i, (v, w) in enumerate(zip(vals, widths, strict=True)))

        parts.append(f"{r.name} ({len(r.rows)} rows)")
        parts.append(line(list(r.columns)).rstrip())
        parts.append("  ".join("-" * w for w in widths))
        parts += [line(c).rstrip() for c in cells]
        parts.append("")
    return "\n".join(parts)
