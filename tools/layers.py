"""Draw the layers contract from the real imports: ``python -m tools.layers``.

Reads the layers of ``[tool.importlinter]`` in ``pyproject.toml``, builds the import graph
of ``nf`` with grimp (import-linter's own graph library) and writes
``docs/layers.svg``: one band per layer, top to bottom, one box per module (or package) of
the layer, one arrow per pair of boxes with imports between them. Grey arrows point down
(or, curved, to a sibling of the same layer that may be imported), as they must;
an arrow pointing up is drawn red (dashed when the contract lists it in
``ignore_imports``). It also prints the same as text, layer by layer.
"""

from __future__ import annotations

import sys
import tomllib
from collections import defaultdict
from pathlib import Path
from xml.sax.saxutils import escape

import grimp

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "layers.svg"
WIDTH, BAND, BOX_H, MARGIN = 1180, 78, 30, 20


def contract() -> tuple[list[list[str]], set[tuple[str, str]]]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in cfg["contracts"] if c["type"] == "layers")
    rows = []
    for layer in layers["layers"]:
        names = [n.strip().strip("()") for n in layer.replace(":", "|").split("|")]
        rows.append([n for n in names if n])
    ignored = set()
    for line in layers.get("ignore_imports", []):
        a, _, b = line.partition("->")
        ignored.add((a.strip(), b.strip()))
    return rows, ignored


def owner(module: str, elements: list[str]) -> str | None:
    """The layer element a module belongs to: the longest element that is it or holds it."""
    best = None
    for e in elements:
        if (module == e or module.startswith(e + ".")) and (best is None or len(e) > len(best)):
            best = e
    return best


def edges(rows: list[list[str]], ignored: set[tuple[str, str]]
          ) -> dict[tuple[str, str], tuple[int, bool]]:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("nf")
    elements = [e for row in rows for e in row]
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    waived: dict[tuple[str, str], bool] = {}
    for m in graph.modules:
        a = owner(m, elements)
        if a is None:
            continue
        for imported in graph.find_modules_directly_imported_by(m):
            b = owner(imported, elements)
            if b is None or b == a:
                continue
            found[(a, b)].add(m)
            waived[(a, b)] = waived.get((a, b), True) and (m, imported) in ignored
    return {k: (len(v), waived[k]) for k, v in found.items()}


def render(rows: list[list[str]], links: dict[tuple[str, str], tuple[int, bool]],
           present: set[str]) -> str:
    level = {e: i for i, row in enumerate(rows) for e in row}
    pos: dict[str, tuple[float, float, float]] = {}
    for i, row in enumerate(rows):
        shown = [e for e in row if e in present]
        step = (WIDTH - 2 * MARGIN) / max(1, len(shown))
        for j, e in enumerate(shown):
            w = min(step - 12, 8.2 * len(e) + 16)
            pos[e] = (MARGIN + step * (j + 0.5), MARGIN + i * BAND + BAND / 2, w)
    height = 2 * MARGIN + len(rows) * BAND
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
           'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/>'
           '</marker><marker id="u" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#c00"/>'
           '</marker></defs>', f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>']
    for i in range(len(rows)):
        y = MARGIN + i * BAND
        out.append(f'<rect x="4" y="{y + 2}" width="{WIDTH - 8}" height="{BAND - 4}" '
                   f'fill="{"#f4f6fa" if i % 2 else "#eef1f6"}" rx="6"/>')
    for (a, b), (_, waived) in sorted(links.items(), key=lambda kv: level[kv[0][0]]
                                       > level[kv[0][1]]):
        if a not in pos or b not in pos:
            continue
        (x1, y1, _), (x2, y2, _) = pos[a], pos[b]
        up = level[b] < level[a]
        same = level[b] == level[a]
        if same:
            y1 = y2 = y1 - BOX_H / 2
        else:
            y1 += BOX_H / 2 if not up else -BOX_H / 2
            y2 += -BOX_H / 2 if not up else BOX_H / 2
        style = ('stroke="#c00" stroke-width="2"' + (' stroke-dasharray="6,4"' if waived
                                                       else '') + ' marker-end="url(#u)"'
                 ) if up else 'stroke="#8a8f99" stroke-opacity="0.45" marker-end="url(#a)"'
        if same:
            mid = (x1 + x2) / 2
            out.append(f'<path d="M{x1:.0f},{y1:.0f} Q{mid:.0f},{y1 - 22:.0f} '
                       f'{x2:.0f},{y2:.0f}" fill="none" {style}/>')
        else:
            out.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                       f'{style}/>')
    for e, (x, y, w) in pos.items():
        out.append(f'<rect x="{x - w / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{w:.0f}" '
                   f'height="{BOX_H}" rx="4" fill="#fff" stroke="#3b4a63"/>')
        out.append(f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle">'
                   f'{escape(e)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    rows, ignored = contract()
    links = edges(rows, ignored)
    sys.path.insert(0, str(ROOT))
    present = {e for row in rows for e in row
               if (ROOT / (e.replace(".", "/") + ".py")).exists()
               or (ROOT / e.replace(".", "/")).is_dir()}
    OUT.write_text(render(rows, links, present), encoding="utf-8")
    level = {e: i for i, row in enumerate(rows) for e in row}
    for i, row in enumerate(rows):
        print(f"{i + 1:2}. {' | '.join(e for e in row if e in present)}")
        for e in row:
            outs = sorted((b, n, w) for (a, b), (n, w) in links.items() if a == e)
            ups = [f"{b} ({'ignored until fixed' if w else 'UPWARD'})"
                   for b, _, w in outs if level[b] < i]
            if ups:
                print(f"      {e} imports up: {', '.join(ups)}")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
