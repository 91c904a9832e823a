"""Sampling the NF's SBI worker with py-spy during a run, and summarising where the time
goes: by component (the NF's own packages, Quart, Granian, PyMongo, pydantic, asyncio...)
and by function (self time)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    if here.is_file():
        return str(here)
    return shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start py-spy on ``pid`` for ``seconds`` (collapsed stacks into ``out``)."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    cmd = [exe, "record", "--format", "raw", "--nonblocking", "-r", str(rate),
           "-d", str(max(1, round(seconds))), "-p", str(pid), "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


_STDLIB_PKGS = {"asyncio", "json", "concurrent", "multiprocessing", "email", "http", "logging",
                "urllib", "collections", "importlib", "encodings", "re", "ssl", "socket"}


def component(path: str) -> str:
    """Which package a source file belongs to: ``nf.<slice>``, a third-party package, or
    ``stdlib.<module>``. py-spy gives paths relative to their import root."""
    p = path.replace("\\", "/")
    m = re.search(r"site-packages/(.+)$", p)
    if m:
        p = m.group(1)
    else:
        m = re.search(r"python3\.\d+/(.+)$", p)
        if m:
            p = m.group(1)
    m = re.search(r"(?:^|/)nf/([a-z_]+)(?:/|\.py$)", p)
    if m:
        return f"nf.{m.group(1)}"
    if p.startswith("<frozen "):
        return "stdlib." + p.removeprefix("<frozen ").rstrip(">").split(".")[0]
    segs = [s for s in p.split("/") if s]
    if not segs:
        return "?"
    head = segs[0].removesuffix(".py")
    if len(segs) == 1 or head in _STDLIB_PKGS:
        return "stdlib." + head
    return head


def parse_frame(frame: str) -> tuple[str, str]:
    """(function, file) of one frame of a collapsed stack."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip(), ""
    return m.group("func"), m.group("file")


def summarize(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Where the samples are: self time per function and per component; self time charged
    to its *owner* (the nearest caller outside the standard library, so a socket write
    counts for PyMongo or Granian); inclusive time per component."""
    self_fn: Counter[str] = Counter()
    self_comp: Counter[str] = Counter()
    owner: Counter[str] = Counter()
    incl_comp: Counter[str] = Counter()
    nf_fn: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # Skip py-spy's process/thread header frames ("process 123:..." / "thread (0x...)").
        frames = [parse_frame(f) for f in stack.split(";")
                  if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        total += n
        comps = [component(f) for _, f in frames]
        func = frames[-1][0]
        self_fn[f"{func} ({comps[-1]})"] += n
        self_comp[comps[-1]] += n
        owner[next((c for c in reversed(comps) if not c.startswith("stdlib.")), comps[-1])] += n
        for c in set(comps):
            incl_comp[c] += n
        # The NF's own frame nearest to the leaf: which of its functions the time is under.
        for (fn, _f), c in zip(reversed(frames), reversed(comps), strict=True):
            if c.startswith("nf.") and c != "nf.sbi":
                nf_fn[f"{fn} ({c})"] += n
                break

    def pct(c: Counter[str], skip_base: bool = False) -> list[dict[str, Any]]:
        rows = [(k, v) for k, v in c.most_common()
                if not (skip_base and v >= 0.95 * total)]  # the stack's base: every sample
        return [{"name": k, "pct": round(100 * v / total, 1)} for k, v in rows[:top]]

    return {"samples": total, "self_by_component": pct(self_comp),
            "self_by_owner": pct(owner), "inclusive_by_component": pct(incl_comp, True),
            "under_nf_function": pct(nf_fn), "self_by_function": pct(self_fn)}


def text(summary: dict[str, Any]) -> str:
    lines = [f"profile: {summary.get('samples', 0)} samples of the SBI worker"]
    for key, title in (("self_by_owner", "self time by owner (nearest non-stdlib caller)"),
                       ("self_by_component", "self time by component"),
                       ("inclusive_by_component", "inclusive time by component"),
                       ("under_nf_function", "time under the NF's own functions"),
                       ("self_by_function", "self time by function")):
        lines.append(f"  {title}:")
        for row in summary.get(key, [])[:10]:
            lines.append(f"    {row['pct']:5.1f}%  {row['name']}")
    return "\n".join(lines)
