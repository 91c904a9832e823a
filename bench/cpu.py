"""CPU time of process trees, read from /proc (Linux only).

A sample is the sum of user+system time of a root process and all its live descendants,
per process; the difference of two samples is what the tree spent in between (a process
that exits in between loses its share: the NF's processes live for the whole run).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcTimes:
    pid: int
    name: str
    cmdline: str
    cpu_s: float


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(ppid, comm, user+system seconds) of one process, or None if it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    head, _, rest = raw.rpartition(")")
    comm = head.partition("(")[2]
    fields = rest.split()
    # fields[0] is state (field 3); utime, stime are fields 14, 15 -> index 11, 12.
    ppid = int(fields[1])
    return ppid, comm, (int(fields[11]) + int(fields[12])) / TICKS


def _cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]


def tree(root: int) -> list[ProcTimes]:
    """The root and all its descendants, with their CPU seconds so far."""
    parent: dict[int, int] = {}
    info: dict[int, tuple[str, float]] = {}
    for d in PROC.iterdir():
        if not d.name.isdigit():
            continue
        st = _stat(int(d.name))
        if st is None:
            continue
        parent[int(d.name)] = st[0]
        info[int(d.name)] = (st[1], st[2])
    keep = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in keep and pid not in keep:
                keep.add(pid)
                changed = True
    return [ProcTimes(pid, info[pid][0], _cmdline(pid), info[pid][1])
            for pid in sorted(keep) if pid in info]


def snapshot(roots: Mapping[str, int | Sequence[int]]) -> dict[str, list[ProcTimes]]:
    """Every tree (a label may name several roots: NF instances), plus the whole machine
    as a pseudo-process under the label "machine" (busy CPU seconds of all cores, from
    /proc/stat)."""
    snap = {label: [p for r in ([pids] if isinstance(pids, int) else pids) for p in tree(r)]
            for label, pids in roots.items()}
    snap["machine"] = [ProcTimes(0, "all", "", machine_busy_s())]
    return snap


def machine_busy_s() -> float:
    """CPU seconds all cores spent not idle (user, nice, system, irq, softirq, steal)."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0
    vals = [int(v) for v in first[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = vals
    return (user + nice + system + irq + softirq + steal) / TICKS


def usage(before: dict[str, list[ProcTimes]], after: dict[str, list[ProcTimes]],
          seconds: float, cores: int | None = None) -> dict[str, object]:
    """CPU used between two snapshots, per tree: seconds, % of one core, % of all cores,
    and the processes that used most."""
    cores = cores or os.cpu_count() or 1
    out: dict[str, object] = {"window_s": round(seconds, 3), "cores": cores}
    for label, procs in after.items():
        was = {p.pid: p.cpu_s for p in before.get(label, [])}
        per = []
        total = 0.0
        for p in procs:
            used = p.cpu_s - was.get(p.pid, 0.0)
            total += used
            if used > 0:
                per.append({"pid": p.pid, "name": p.name, "cmdline": p.cmdline,
                            "cpu_s": round(used, 3)})
        per.sort(key=lambda d: -float(d["cpu_s"]))  # type: ignore[arg-type]
        out[label] = {
            "cpu_s": round(total, 3),
            "pct_one_core": round(100 * total / seconds, 1) if seconds > 0 else 0.0,
            "pct_all_cores": round(100 * total / seconds / cores, 1) if seconds > 0 else 0.0,
            "processes": per[:8],
        }
    # What the machine did besides the trees measured (other work on a shared host).
    mach = out.get("machine")
    if isinstance(mach, dict):
        ours = sum(float(v["cpu_s"]) for k, v in out.items()
                   if isinstance(v, dict) and k != "machine")
        others = max(0.0, float(mach["cpu_s"]) - ours)
        out["others"] = {"cpu_s": round(others, 3),
                         "pct_all_cores": round(100 * others / seconds / cores, 1)
                         if seconds > 0 else 0.0}
    return out
