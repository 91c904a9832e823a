"""A small SVG line chart of the scale curve, written by hand (no plotting dependency):
CHF updates/s (left axis) and CHF update p99 in ms (right axis) against the population
(logarithmic axis)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 70, 40, 60
BLUE, RED, GREY = "#1f5fbf", "#c0392b", "#888888"


def _nice_max(v: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k at or above ``v`` (at least 1)."""
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= v:
            return float(m * e)
    return float(10 * e)


def _people(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:g} M"
    if n >= 1e3:
        return f"{n / 1e3:g} k"
    return f"{n:g}"


def _num(v: float) -> str:
    return f"{v:g}" if v < 10_000 else f"{v:,.0f}"


def svg(rows: Sequence[Mapping[str, Any]], title: str = "",
        y1: str = "chf_update_per_s", y2: str = "chf_update_p99_ms") -> str:
    """The chart as an SVG document. Rows without a population or both values are skipped;
    with fewer than one usable row the chart says so."""
    pts = [(float(r["subscribers"]), r.get(y1), r.get(y2)) for r in rows
           if r.get("subscribers")]
    pts = [p for p in pts if p[1] is not None or p[2] is not None]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">'
           f'{escape(title)}</text>']
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    if not pts:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>')
        return "\n".join([*out, "</svg>"]) + "\n"
    xs = [p[0] for p in pts]
    lo, hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    if hi == lo:
        hi = lo + 1
    m1 = _nice_max(max((float(p[1]) for p in pts if p[1] is not None), default=1) * 1.1)
    m2 = _nice_max(max((float(p[2]) for p in pts if p[2] is not None), default=1) * 1.1)

    def x(n: float) -> float:
        return LEFT + pw * (math.log10(n) - lo) / (hi - lo)

    def ya(v: float, m: float) -> float:
        return TOP + ph * (1 - v / m)

    # Axes, grid, ticks.
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" '
               f'stroke="{GREY}"/>')
    for k in range(lo, hi + 1):
        gx = x(10.0 ** k)
        out.append(f'<line x1="{gx:.1f}" y1="{TOP}" x2="{gx:.1f}" y2="{TOP + ph}" '
                   f'stroke="#eeeeee"/>')
        out.append(f'<text x="{gx:.1f}" y="{TOP + ph + 18}" text-anchor="middle">'
                   f'{_people(10.0 ** k)}</text>')
    for i in range(6):
        v1, v2 = m1 * i / 5, m2 * i / 5
        gy = ya(v1, m1)
        out.append(f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{LEFT + pw}" y2="{gy:.1f}" '
                   f'stroke="#eeeeee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" '
                   f'fill="{BLUE}">{_num(v1)}</text>')
        out.append(f'<text x="{LEFT + pw + 6}" y="{gy + 4:.1f}" fill="{RED}">'
                   f'{_num(v2)}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 18}" text-anchor="middle">'
               'subscribers (log scale)</text>')
    out.append(f'<text x="18" y="{TOP + ph / 2}" text-anchor="middle" fill="{BLUE}" '
               f'transform="rotate(-90 18 {TOP + ph / 2})">CHF updates/s</text>')
    out.append(f'<text x="{W - 14}" y="{TOP + ph / 2}" text-anchor="middle" fill="{RED}" '
               f'transform="rotate(90 {W - 14} {TOP + ph / 2})">update p99 (ms)</text>')
    # The two series.
    for idx, m, colour, dash in ((1, m1, BLUE, ""), (2, m2, RED, ' stroke-dasharray="6 4"')):
        series = [(x(p[0]), ya(float(p[idx]), m), float(p[idx])) for p in pts  # type: ignore[arg-type]
                  if p[idx] is not None]
        if len(series) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in series)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"{dash}/>')
        for px, py, v in series:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}"/>')
            out.append(f'<text x="{px + 6:.1f}" y="{py - 6:.1f}" fill="{colour}">'
                       f'{_num(round(v, 1))}</text>')
    return "\n".join([*out, "</svg>"]) + "\n"
