"""``python -m bench.drivers``: client CPU per operation of two MongoDB drivers on the ledger's
hot operations, against the same database server.

Drivers: PyMongo's async API (``AsyncMongoClient``, what the NF uses) and ``mongojet`` (a
Python binding of MongoDB's Rust driver; optional, ``pip install mongojet``). Operations,
on wallet documents written by the ledger's own bulk function and on EDR-shaped records:

- ``find_one_and_update``: a conditional ``$inc`` (filter on ``_id`` and on the balance
  still covering the amount), returning the document after the update, as a charge does;
- ``find_one``: read one wallet by ``_id``, as a cold charge or a view does;
- ``insert_many``: a batch of EDR records, as the EDR writer does.

Each (driver, operation, concurrency) cell runs ``--ops`` operations after a short warm-up;
the client's CPU is this process's user+system time (all threads: the Rust driver does
its I/O on its own threads), the server's CPU is read from /proc. Drivers alternate within
each repetition so that other work on the host hits both alike; the report gives medians.
Both run on uvloop, as the NF's SBI workers do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu
from bench.seed import MIB, seed_population, write_catalog
from nf.config import Settings
from nf.edr.records import Party, UnitRecord, charging_record
from nf.store import embedded

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
COLLECTION = "ledger_wallets"
EDRS = "drv_edrs"
OPS = ("find_one_and_update", "find_one", "insert_many")


def log(msg: str) -> None:
    print(f"drivers: {msg}", file=sys.stderr, flush=True)


@dataclass
class Driver:
    name: str
    version: str
    fam: Callable[[str, int], Awaitable[Any]]
    find: Callable[[str], Awaitable[Any]]
    insert: Callable[[list[dict[str, Any]]], Awaitable[Any]]
    close: Callable[[], Awaitable[None]]


def _filter(key: str, amount: int) -> dict[str, Any]:
    # The balance still covers the amount: the shape of the ledger's conditional write.
    return {"_id": key, "buckets.0.q": {"$gte": amount}}


def _inc(amount: int) -> dict[str, Any]:
    return {"$inc": {"v": 1, "buckets.0.u": amount}}


async def pymongo_driver(uri: str, database: str) -> Driver:
    import pymongo
    from pymongo import AsyncMongoClient, ReturnDocument

    # The options of nf.store.mongo.make_client.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, tz_aware=True, maxPoolSize=100, minPoolSize=4, serverSelectionTimeoutMS=5000,
        connectTimeoutMS=5000, timeoutMS=5000, appname="bench-drivers")
    db = client[database]
    col, edrs = db[COLLECTION], db[EDRS]

    async def fam(key: str, amount: int) -> Any:
        return await col.find_one_and_update(_filter(key, amount), _inc(amount),
                                             return_document=ReturnDocument.AFTER)

    async def find(key: str) -> Any:
        return await col.find_one({"_id": key})

    async def insert(docs: list[dict[str, Any]]) -> Any:
        return await edrs.insert_many(docs, ordered=False)

    async def close() -> None:
        await client.close()

    return Driver("pymongo-async", pymongo.version, fam, find, insert, close)


async def mongojet_driver(uri: str, database: str) -> Driver | None:
    try:
        import mongojet
    except ImportError:
        return None
    from importlib.metadata import version

    client = await mongojet.create_client(uri, tz_aware=True)
    db = client.get_database(database)
    col, edrs = db[COLLECTION], db[EDRS]

    async def fam(key: str, amount: int) -> Any:
        return await col.find_one_and_update(_filter(key, amount), _inc(amount),
                                             return_document="after")

    async def find(key: str) -> Any:
        return await col.find_one({"_id": key})

    async def insert(docs: list[dict[str, Any]]) -> Any:
        return await edrs.insert_many(docs, ordered=False)

    async def close() -> None:
        await client.close()

    return Driver("mongojet", version("mongojet"), fam, find, insert, close)


def edr_batch(n: int, supis: list[str], i: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for j in range(n):
        supi = supis[(i * n + j) % len(supis)]
        out.append(charging_record(
            event="update", time=now,
            party=Party(supi=supi, gpsi="msisdn-1" + supi[5:], brand="benchmark",
                        host_network="northwind", serving_plmn="00101"),
            charging_data_ref=uuid.uuid4().hex, invocation_sequence_number=i, result="SUCCESS",
            units=(UnitRecord(rating_group=10, used_total=MIB, granted=MIB,
                              debited=(("b1", MIB),)),),
            record_id=uuid.uuid4().hex))
    return out


def _proc_cpu_s(pid: int) -> float:
    return sum(p.cpu_s for p in cpu.tree(pid))


async def cell(drv: Driver, op: str, concurrency: int, n: int, supis: list[str],
               batch: int, db_pid: int) -> dict[str, Any]:
    """Run ``n`` operations of one kind at ``concurrency``; CPU and wall time per op."""
    work: list[Callable[[], Awaitable[Any]]] = []
    for i in range(n):
        key = supis[(i * 7919) % len(supis)]
        if op == "find_one_and_update":
            work.append(lambda key=key: drv.fam(key, 1))
        elif op == "find_one":
            work.append(lambda key=key: drv.find(key))
        else:
            docs = edr_batch(batch, supis, i)
            work.append(lambda docs=docs: drv.insert([dict(d) for d in docs]))
    it = iter(work)

    async def worker() -> None:
        for w in it:
            got = await w()
            if got is None:
                raise RuntimeError(f"{drv.name} {op}: no result")

    d0 = _proc_cpu_s(db_pid)
    c0, t0 = time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    wall, client = time.perf_counter() - t0, time.process_time() - c0
    server = _proc_cpu_s(db_pid) - d0
    return {"ops": n, "wall_s": round(wall, 3), "ops_per_s": round(n / wall, 1),
            "client_cpu_us_per_op": round(client / n * 1e6, 1),
            "server_cpu_us_per_op": round(server / n * 1e6, 1)}


async def measure(uri: str, database: str, args: argparse.Namespace, db_pid: int,
                  supis: list[str]) -> dict[str, Any]:
    makers = [pymongo_driver, mongojet_driver]
    drivers: list[Driver] = []
    for make in makers:
        d = await make(uri, database)
        if d is None:
            log("mongojet is not installed (pip install mongojet==0.5.8): measuring PyMongo "
                "only")
            continue
        drivers.append(d)
    cells: dict[str, list[dict[str, Any]]] = {}
    try:
        for d in drivers:  # warm-up: connections, server caches, code paths
            for op in OPS:
                await cell(d, op, 8, 200, supis, args.batch, db_pid)
        for rep in range(args.repeat):
            for conc in args.concurrency:
                for op in OPS:
                    order = drivers if rep % 2 == 0 else list(reversed(drivers))
                    for d in order:
                        n = args.ops if op != "insert_many" else max(50, args.ops // 4)
                        got = await cell(d, op, conc, n, supis, args.batch, db_pid)
                        cells.setdefault(f"{d.name}|{op}|{conc}", []).append(got)
                        log(f"run {rep + 1}/{args.repeat} {d.name:<14} {op:<20} c={conc:<3} "
                            f"{got['client_cpu_us_per_op']:>7.1f} us client CPU/op, "
                            f"{got['server_cpu_us_per_op']:>6.1f} us server, "
                            f"{got['ops_per_s']:>8.1f} ops/s")
    finally:
        for d in drivers:
            await d.close()
    med: list[dict[str, Any]] = []
    for key, runs in cells.items():
        name, op, conc = key.split("|")
        row: dict[str, Any] = {"driver": name, "op": op, "concurrency": int(conc),
                               "runs": len(runs)}
        for k in ("client_cpu_us_per_op", "server_cpu_us_per_op", "ops_per_s"):
            row[k] = round(statistics.median(r[k] for r in runs), 1)
        med.append(row)
    return {"drivers": {d.name: d.version for d in drivers}, "cells": cells, "median": med}


async def seed(uri: str, database: str, n: int, catalog: Path) -> list[str]:
    settings = Settings.load(HERE / "nf-bench.yaml", mongodb_uri=uri,
                             mongodb_database=database, catalog_dir=catalog)
    pop, _info = await seed_population(settings, n, 0.0, MIB)
    supis: list[str] = []
    for g in pop["groups"]:
        supis += [f"{g['supi_prefix']}{i:0{g['digits']}d}"
                  for i in range(g["first"], g["first"] + g["count"])]
    return supis


def table(rep: dict[str, Any]) -> str:
    lines = [f"{'operation':<21}{'conc':>5}" + "".join(
        f"{d + ' us/op':>22}{'ops/s':>9}" for d in rep["drivers"]) + f"{'server us/op':>14}"]
    rows: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in rep["median"]:
        rows.setdefault((r["op"], r["concurrency"]), {})[r["driver"]] = r
    for (op, conc), by in rows.items():
        cells = "".join(f"{by[d]['client_cpu_us_per_op']:>22.1f}{by[d]['ops_per_s']:>9.0f}"
                        if d in by else f"{'-':>22}{'-':>9}" for d in rep["drivers"])
        srv = "/".join(f"{by[d]['server_cpu_us_per_op']:.0f}" for d in rep["drivers"] if d in by)
        lines.append(f"{op:<21}{conc:>5}{cells}{srv:>14}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.drivers", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("--ops", type=int, default=4000, help="operations per cell (insert_many: "
                   "a quarter, each a batch)")
    p.add_argument("--batch", type=int, default=16, help="EDR records per insert_many")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--wallets", type=int, default=20_000)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    import uvloop

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = Path(tempfile.mkdtemp(prefix="nf-drivers-"))
    db = embedded.start(work / "db", prefer="rust", log=work / "db.log")
    rep: dict[str, Any] = {"started_at": stamp, "loadavg_at_start": os.getloadavg(),
                           "options": {k: v if not isinstance(v, Path) else str(v)
                                       for k, v in vars(args).items()},
                           "database": "secantusd-rs " + embedded.RUST_VERSION}
    try:
        log(f"SecantusDB at {db.uri}; seeding {args.wallets} wallets")
        supis = uvloop.run(seed(db.uri, "nf_drv", args.wallets,
                                write_catalog(work / "catalog", 3)))
        rep.update(uvloop.run(measure(db.uri, "nf_drv", args, db.process.pid, supis)))
    finally:
        db.stop()
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    rep["loadavg_at_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"drivers-{stamp}.json"
    out.write_text(json.dumps(rep, indent=2) + "\n")
    print(table(rep))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
