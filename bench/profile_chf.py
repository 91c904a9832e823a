"""CPU per CHF charging update, in-process, with a ranked profile.

``python -m bench.profile_chf [--sessions 32] [--updates 20] [--profile] [--top 40]``
starts the embedded database, builds the whole NF in this process (``create_app`` with
every part and its lifespan, real clock), seeds ``--sessions`` subscribers, opens one
charging session each, then sends ``--updates`` usage updates per session with all
sessions concurrent (through Quart's test client: no socket, no HTTP/2 framing). It prints
this process's CPU per update (the NF's share; the database runs in its own process) and
wall-clock updates/s, then with ``--profile`` the top functions by cumulative and by own
time (cProfile). Create, release and PCF create/delete are timed the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import monitoring
from quart.typing import TestClientProtocol

from nf.catalog import CatalogHolder
from nf.clock import SystemClock
from nf.config import Settings
from nf.demo import DEMO_CONFIG
from nf.ledger.mongo import MongoLedger, NewSubscriber
from nf.sbi.entry import tune_gc
from nf.store import embedded
from nf.store.mongo import make_client
from nf.wiring import create_app

CHF = "/nchf-convergedcharging/v3/chargingdata"
PCF = "/npcf-smpolicycontrol/v1/sm-policies"
MIB = 1024 * 1024


def chf_body(supi: str, isn: int, charging_id: int, used: int | None,
             requested: bool = True) -> dict[str, Any]:
    mu: dict[str, Any] = {"ratingGroup": 10}
    if requested:
        mu["requestedUnit"] = {}
    if used is not None:
        mu["usedUnitContainer"] = [{"localSequenceNumber": isn, "totalVolume": used,
                                    "uplinkVolume": used // 4,
                                    "downlinkVolume": used - used // 4}]
    return {
        "subscriberIdentifier": supi,
        "nfConsumerIdentification": {"nodeFunctionality": "SMF",
                                     "nFName": str(uuid.UUID(int=charging_id)),
                                     "nFPLMNID": {"mcc": "001", "mnc": "01"}},
        "invocationTimeStamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "invocationSequenceNumber": isn,
        "notifyUri": "http://127.0.0.1:9/notify",
        "pDUSessionChargingInformation": {
            "chargingId": charging_id,
            "pduSessionInformation": {"pduSessionID": 1, "dnnId": "internet",
                                      "servingCNPlmnId": {"mcc": "001", "mnc": "01"}}},
        "multipleUnitUsage": [mu],
    }


def pcf_body(supi: str, pdu: int) -> dict[str, Any]:
    return {"supi": supi, "pduSessionId": pdu, "dnn": "internet",
            "notificationUri": "http://127.0.0.1:9/pcf",
            "sliceInfo": {"sst": 1}, "servingNetwork": {"mcc": "001", "mnc": "01"},
            "ratType": "NR", "pduSessionType": "IPV4"}


async def _post(client: TestClientProtocol, path: str, body: dict[str, Any],
                want: int) -> Any:
    r = await client.post(path, json=body)
    if r.status_code != want:
        raise RuntimeError(f"{path}: {r.status_code} {await r.get_data()!r}")
    return r


class _GcTimer:
    """Time spent in the garbage collector, per generation."""

    def __init__(self) -> None:
        self.s = [0.0, 0.0, 0.0]
        self.n = [0, 0, 0]
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            g = info["generation"]
            self.s[g] += time.perf_counter() - self._t0
            self.n[g] += 1

    def reset(self) -> None:
        self.s, self.n = [0.0, 0.0, 0.0], [0, 0, 0]


GC = _GcTimer()


class _Commands(monitoring.CommandListener):
    """Database commands sent, by collection and command name."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        coll = event.command.get(event.command_name)
        key = f"{event.command_name} {coll}" if isinstance(coll, str) else event.command_name
        self.seen[key] = self.seen.get(key, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = _Commands()


async def _timed(label: str, n: int, fn: Callable[[], Awaitable[None]],
                 prof: cProfile.Profile | None, count_commands: bool) -> dict[str, Any]:
    GC.reset()
    COMMANDS.seen = {}
    c0, t0 = time.process_time(), time.perf_counter()
    if prof is not None:
        prof.enable()
    await fn()
    if prof is not None:
        prof.disable()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    res = {"n": n, "cpu_us_per_op": round(cpu / n * 1e6, 1),
           "ops_per_s": round(n / wall, 1), "gc_us_per_op": round(sum(GC.s) / n * 1e6, 1)}
    print(f"{label:12s} n={n:5d} cpu/op={res['cpu_us_per_op']:8.1f} us "
          f"ops/s={res['ops_per_s']:8.1f} gc/op={res['gc_us_per_op']:6.1f} us "
          f"(collections {GC.n})", flush=True)
    if count_commands:
        res["db_commands_per_op"] = {k: round(v / n, 2) for k, v in
                                     sorted(COMMANDS.seen.items())}
        print(f"{'':12s} db commands/op: {res['db_commands_per_op']}", flush=True)
    return res


async def run(sessions: int, updates: int, profile: bool, top: int,
              sort: str, gc_tune: bool = True, count: bool = False) -> dict[str, Any]:
    db = embedded.start(None)
    settings = Settings.load(DEMO_CONFIG, mongodb_uri=db.uri,
                             mongodb_database="profile_chf_" + uuid.uuid4().hex[:8])
    if count:
        monitoring.register(COMMANDS)  # applies to clients made from now on
    client = make_client(settings)
    results: dict[str, Any] = {}
    try:
        assert settings.catalog_dir is not None
        ledger = MongoLedger(client[settings.mongodb_database], settings,
                             CatalogHolder.from_dir(settings.catalog_dir))
        await ledger.ensure_indexes()
        supis = [f"imsi-00101{7100000000 + i}" for i in range(sessions)]
        await ledger.bulk_create_subscribers(
            [NewSubscriber(supi=s, brand="lumen", home_network="northwind",
                           plan_offer_id="lumen-unlimited") for s in supis],
            SystemClock().now())
        app = create_app(settings, role="sbi", clock=SystemClock(),
                         db=client[settings.mongodb_database])
        if gc_tune:
            tune_gc()  # as the server processes do (nf.sbi.entry)
        prof = cProfile.Profile() if profile else None
        async with app.test_app():
            tc = app.test_client()
            refs: list[str] = []

            async def pcf_create() -> None:
                await asyncio.gather(*(_post(tc, PCF, pcf_body(s, 1), 201) for s in supis))

            async def create() -> None:
                rs = await asyncio.gather(*(
                    _post(tc, CHF, chf_body(s, 0, 1000 + i, None), 201)
                    for i, s in enumerate(supis)))
                refs.extend(r.headers["location"].rsplit("/", 1)[1] for r in rs)

            async def update_loop() -> None:
                async def one(i: int) -> None:
                    for k in range(1, updates + 1):
                        await _post(tc, f"{CHF}/{refs[i]}/update",
                                    chf_body(supis[i], k, 1000 + i, MIB), 200)
                await asyncio.gather(*(one(i) for i in range(sessions)))

            async def release() -> None:
                await asyncio.gather(*(
                    _post(tc, f"{CHF}/{refs[i]}/release",
                          chf_body(s, updates + 1, 1000 + i, MIB, requested=False), 204)
                    for i, s in enumerate(supis)))

            # Warm-up: one PCF create + CHF create + one update, not counted.
            results["pcf_create"] = await _timed("pcf create", sessions, pcf_create, None, count)
            results["create"] = await _timed("chf create", sessions, create, None, count)
            results["update"] = await _timed("chf update", sessions * updates, update_loop,
                                             prof, count)
            results["release"] = await _timed("chf release", sessions, release, None, count)
        if prof is not None:
            out = io.StringIO()
            st = pstats.Stats(prof, stream=out)
            st.sort_stats(sort).print_stats(top)
            print(out.getvalue())
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()
        db.stop()
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.profile_chf", description=__doc__)
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--commands", action="store_true",
                    help="count database commands per operation (slows it a little)")
    ap.add_argument("--no-gc-tune", action="store_true",
                    help="leave the garbage collector at CPython's defaults")
    a = ap.parse_args()
    print(json.dumps(asyncio.run(run(a.sessions, a.updates, a.profile, a.top, a.sort,
                                     not a.no_gc_tune, a.commands))))
