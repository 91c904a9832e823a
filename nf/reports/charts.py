"""Charts of the usage and uptake reports: PNG, SVG, or a self-contained HTML page."""

from __future__ import annotations

import html
import io
from collections import defaultdict
from pathlib import Path

from nf.errors import BadRequest
from nf.reports.queries import Report

GIB = 1024**3
MAX_SERIES = 12  # more series than this are folded into "other"


def _series(report: Report, key: str, value: str) -> tuple[list[str], dict[str, list[float]]]:
    days = sorted({str(r["day"]) for r in report.records()})
    totals: dict[str, float] = defaultdict(float)
    per: dict[tuple[str, str], float] = defaultdict(float)
    for r in report.records():
        totals[str(r[key])] += float(r[value])
        per[(str(r[key]), str(r["day"]))] += float(r[value])
    names = sorted(totals, key=lambda k: -totals[k])
    keep, rest = names[:MAX_SERIES], names[MAX_SERIES:]
    series = {n: [per[(n, d)] for d in days] for n in keep}
    if rest:
        series["other"] = [sum(per[(n, d)] for n in rest) for d in days]
    return days, series


def render_chart(report: Report, fmt: str = "png") -> bytes:
    """A stacked bar chart per day: usage (GiB by brand) or uptake (purchases by offer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if report.name == "usage":
        days, series = _series(report, "brand", "bytes_total")
        series = {k: [v / GIB for v in vs] for k, vs in series.items()}
        title, ylabel = "Data usage per day and brand", "GiB"
    elif report.name == "uptake":
        days, series = _series(report, "offer_id", "purchases")
        title, ylabel = "Offer purchases per day", "purchases"
    else:
        raise BadRequest(f"no chart for the {report.name} report (usage or uptake)")
    fig, ax = plt.subplots(figsize=(11, 5), dpi=100)
    colours = plt.get_cmap("tab20")
    try:
        bottom = [0.0] * len(days)
        for i, (name, vals) in enumerate(series.items()):
            ax.bar(days, vals, bottom=bottom, label=name, color=colours(i % 20))
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelrotation=45)
        if series:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata={"Software": None} if fmt == "png" else None)
        return buf.getvalue()
    finally:
        plt.close(fig)


def write_chart(report: Report, path: Path) -> None:
    """By the file's extension: .png, .svg, or .html (the SVG in a standalone page)."""
    ext = path.suffix.lower()
    if ext in (".png", ".svg"):
        path.write_bytes(render_chart(report, ext[1:]))
    elif ext in (".html", ".htm"):
        svg = render_chart(report, "svg").decode()
        svg = svg[svg.index("<svg"):]
        path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>"
                        f"{html.escape(report.name)} report</title></head><body>{svg}"
                        "</body></html>\n", encoding="utf-8")
    else:
        raise BadRequest(f"chart file {path}: use .png, .svg or .html")
