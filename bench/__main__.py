"""``python -m bench`` (``make bench``): the load benchmark end to end; see BENCHMARKS.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.orchestrate import Options, run


def parse(argv: list[str]) -> Options:
    d = Options()
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load benchmark: several SMFs over HTTP/2 against the NF's CHF and PCF, "
                    "with the h2load ceiling of the same server.")
    p.add_argument("--subscribers", type=int, default=d.subscribers,
                   help="population seeded in bulk (default %(default)s)")
    p.add_argument("--small-cap-share", type=float, default=d.small_cap_share,
                   help="share of subscribers on a cap they cross mid-session "
                        "(default %(default)s)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="SBI worker processes (default %(default)s)")
    p.add_argument("--instances", type=int, default=d.instances,
                   help="NF instances (nf serve processes) sharing the database; the "
                        "connections are spread over them (default %(default)s)")
    p.add_argument("--interface", choices=("sbi", "diameter"), default=d.interface,
                   help="sbi: SMFs over HTTP/2; diameter: PGWs over Diameter, each "
                        "subscriber a Gx and a Gy session in the SBI's rhythm, --conns PGW "
                        "connections over the host networks (default %(default)s)")
    p.add_argument("--server", choices=("granian", "hypercorn"), default=d.server)
    p.add_argument("--conns", type=int, default=d.conns,
                   help="HTTP/2 connections, one per SMF (default %(default)s)")
    p.add_argument("--streams", type=int, default=d.streams,
                   help="max concurrent streams per connection (default %(default)s)")
    p.add_argument("--mode", choices=("closed", "open"), default=d.mode,
                   help="closed: N concurrent sessions; open: a target session rate")
    p.add_argument("--mix", choices=("full", "pcf", "chf"), default=d.mix,
                   help="full sessions, or only their policy (pcf) or charging (chf) part")
    p.add_argument("--concurrency", type=int, default=d.concurrency,
                   help="closed loop: concurrent sessions (default %(default)s)")
    p.add_argument("--rate", type=float, default=d.rate,
                   help="open loop: new sessions per second (default %(default)s)")
    p.add_argument("--updates", type=int, default=d.updates,
                   help="CHF updates per session, K (default %(default)s)")
    p.add_argument("--usage-bytes", type=int, default=d.usage_bytes,
                   help="bytes requested and used per update (default %(default)s)")
    p.add_argument("--think", type=float, default=d.think_s,
                   help="mean pause between a session's operations, seconds (default 0)")
    p.add_argument("--duration", type=float, default=d.duration_s,
                   help="measurement window per run, seconds (default %(default)s)")
    p.add_argument("--warmup", type=float, default=d.warmup_s,
                   help="warm-up before each window, seconds (default %(default)s)")
    p.add_argument("--repeat", type=int, default=d.repeat,
                   help="runs; the report gives medians (default %(default)s)")
    p.add_argument("--no-ceiling", action="store_true", help="skip h2load")
    p.add_argument("--ceiling-duration", type=float, default=d.ceiling_duration_s,
                   help="h2load duration per run, seconds (default %(default)s)")
    p.add_argument("--no-warm-probe", action="store_true",
                   help="skip the database-operations-per-warm-update probe after each run")
    p.add_argument("--profile", action="store_true",
                   help="sample the SBI worker (the Diameter process with --interface "
                        "diameter) with py-spy during the second run")
    p.add_argument("--db", choices=("rust", "auto", "python"), default=d.db,
                   help="SecantusDB server (default %(default)s)")
    p.add_argument("--fraud", choices=("on", "off", "compare"), default=d.fraud,
                   help="fraud protection in the NF; compare: off and on alternately, "
                        "a fresh NF per run (default %(default)s)")
    p.add_argument("--label", default="")
    p.add_argument("--out", type=Path, default=None,
                   help="report path (default bench/results/bench-<time>.json)")
    a = p.parse_args(argv)
    if not 0 <= a.small_cap_share <= 1:
        p.error("--small-cap-share must be within [0, 1]")
    if not 1 <= a.instances <= a.conns:
        p.error("--instances must be within [1, --conns]")
    if a.interface == "diameter" and (a.mode != "closed" or a.mix != "full"
                                      or a.instances != 1 or a.fraud == "compare"):
        p.error("--interface diameter runs the closed loop's full mix on one NF instance")
    if a.subscribers < 1 or a.repeat < 1 or a.duration <= 0 or a.duration > 3600:
        p.error("--subscribers, --repeat must be >= 1 and --duration within (0, 3600]")
    return Options(
        subscribers=a.subscribers, small_cap_share=a.small_cap_share, workers=a.workers,
        server=a.server, conns=a.conns, streams=a.streams, mode=a.mode, mix=a.mix,
        concurrency=a.concurrency, rate=a.rate, updates=a.updates, usage_bytes=a.usage_bytes,
        think_s=a.think, duration_s=a.duration, warmup_s=a.warmup, repeat=a.repeat,
        ceiling=not a.no_ceiling, ceiling_duration_s=a.ceiling_duration, profile=a.profile,
        warm_probe=not a.no_warm_probe, db=a.db, label=a.label, out=a.out,
        instances=a.instances, fraud=a.fraud, interface=a.interface)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--scale"]:  # the population curve: its own options (bench/scale.py)
        from bench import scale
        return scale.main(argv[1:])
    opts = parse(argv)
    rep = run(opts)
    return 0 if rep.get("median", {}).get("errors_total", 1) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
