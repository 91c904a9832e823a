"""Every read and write the NF makes while answering SMFs carries its collection's shard
key (``nf.store.shards``), so a sharded cluster routes it to one shard.

The NF runs in-process (both ports, real HTTP/2 through Hypercorn, real database) on a
PyMongo client with a command listener. A full CHF + PCF flow (policy create and update,
charging create, updates across the cap, a retransmission, the throttle delivered to a
real HTTP/2 SMF, release, policy delete), for a single subscriber and a family pool, is
recorded; then every filter is checked against the shard-key map. The few queries that
reach every shard on purpose must be listed in ``shards.CROSS_SHARD``, and the background
sweeps among them must never run inside a request."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from pymongo import AsyncMongoClient, monitoring

from nf import logs
from nf.config import Settings
from nf.store import shards
from nf.store.embedded import free_port
from nf.store.mongo import Doc
from nf.wiring import create_app
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, Usage, httpx_transport

GIB = 1024**3
LUMEN = {"X-API-Key": "demo-key-lumen"}
PROV = "/provisioning/v1"
# Commands that carry no filter on a document (handshakes, cursors, index builds).
IGNORED = {"hello", "ismaster", "isMaster", "ping", "getMore", "killCursors", "endSessions",
           "createIndexes", "listIndexes", "buildInfo", "saslStart", "saslContinue"}


@dataclass(frozen=True)
class Seen:
    collection: str
    command: str
    filter: Mapping[str, Any] | None  # None: an insert (``document`` is set)
    document: Mapping[str, Any] | None
    in_request: bool


class Recorder(monitoring.CommandListener):
    def __init__(self, database: str) -> None:
        self.database = database
        self.on = False
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.on or event.database_name != self.database:
            return
        name = event.command_name
        if name in IGNORED:
            return
        cmd = event.command
        coll = str(cmd.get(name, ""))
        req = "request_id" in logs.bound()
        out: list[Seen] = []
        if name == "find" or name == "count" or name == "distinct":
            out.append(Seen(coll, name, dict(cmd.get("filter") or cmd.get("query") or {}),
                            None, req))
        elif name == "findAndModify":
            out.append(Seen(coll, name, dict(cmd.get("query") or {}), None, req))
        elif name == "update":
            out += [Seen(coll, name, dict(u["q"]), None, req) for u in cmd["updates"]]
        elif name == "delete":
            out += [Seen(coll, name, dict(d["q"]), None, req) for d in cmd["deletes"]]
        elif name == "insert":
            out += [Seen(coll, name, None, dict(d), req) for d in cmd["documents"]]
        elif name == "aggregate":
            match = next((s["$match"] for s in cmd.get("pipeline", []) if "$match" in s), {})
            out.append(Seen(coll, name, dict(match), None, req))
        else:
            out.append(Seen(coll, name, {"(unexpected command)": name}, None, req))
        with self._lock:
            self.seen += out

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@asynccontextmanager
async def nf_on(settings: Settings, client: AsyncMongoClient[Doc]
                ) -> AsyncIterator[tuple[str, str]]:
    """Both ports of the NF in this event loop, on ``client``; yields (sbi, oam) URLs."""
    stop = asyncio.Event()
    ports = [free_port(), free_port()]
    tasks = []
    for role, port in zip(("sbi", "oam"), ports, strict=True):
        app = create_app(settings, role=role,  # type: ignore[arg-type]
                         db=client[settings.mongodb_database])
        cfg = Config()
        cfg.bind = [f"127.0.0.1:{port}"]
        cfg.accesslog = None
        cfg.graceful_timeout = 1.0
        tasks.append(asyncio.create_task(serve(app, cfg,  # type: ignore[arg-type]
                                               shutdown_trigger=stop.wait)))
    try:
        async with httpx.AsyncClient(timeout=1) as probe:
            for _ in range(300):
                try:
                    if (await probe.get(f"http://127.0.0.1:{ports[1]}/readyz")).status_code \
                            == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def test_targets_reads_the_filter() -> None:
    key = shards.SHARD_KEYS["edrs"]
    assert shards.targets(key, {"supi": "imsi-1", "time": 5})
    assert shards.targets(key, {"supi": {"$in": ["a", "b"]}, "time": {"$eq": 3}})
    assert not shards.targets(key, {"supi": "imsi-1"})
    assert not shards.targets(key, {"supi": {"$gt": "a"}, "time": 1})
    wallets = shards.SHARD_KEYS["ledger_wallets"]
    assert shards.targets(wallets, {"_id": "imsi-1", "v": 3})
    assert not shards.targets(wallets, {"supis": "imsi-1"})
    assert shards.shard_commands("nf")[0] == {
        "shardCollection": "nf.ledger_wallets", "key": {"_id": "hashed"}}


async def test_the_hot_path_carries_every_shard_key(settings: Settings) -> None:
    settings = settings.model_copy(update={"networks": [
        n.model_copy(update={"default_grant_bytes": 8 * GIB}) for n in settings.networks]})
    recorder = Recorder(settings.mongodb_database)
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True,
                                                     event_listeners=[recorder])
    watcher: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    single, owner, kid = "imsi-001010000000701", "imsi-001010000000702", \
        "imsi-001010000000703"
    try:
        async with NotificationReceiver() as smf, nf_on(settings, client) as (sbi, oam), \
                httpx.AsyncClient(http1=False, http2=True, timeout=10) as h2:
            # Provisioning (OAM, not the SMF-facing path) before recording.
            async with httpx.AsyncClient(timeout=10) as care:
                r = await care.post(oam + PROV + "/subscribers", headers=LUMEN, json={
                    "supi": single, "homeNetwork": "northwind",
                    "planOfferId": "lumen-unlimited"})
                assert r.status_code == 201, r.text
                for s in (owner, kid):
                    r = await care.post(oam + PROV + "/subscribers", headers=LUMEN,
                                        json={"supi": s, "homeNetwork": "northwind"})
                    assert r.status_code == 201, r.text
                r = await care.post(oam + PROV + "/groups", headers=LUMEN,
                                    json={"ownerSupi": owner, "offerId": "lumen-family-30gb"})
                assert r.status_code == 201, r.text
                r = await care.post(f"{oam}{PROV}/groups/{r.json()['groupId']}/members",
                                    headers=LUMEN, json={"supi": kid})
                assert r.status_code in (200, 201), r.text

            recorder.on = True
            for i, supi in enumerate((single, owner)):
                pol = PolicySim(h2, sbi, supi, smf.url(f"/pol/{i}"))
                assert (await pol.create()).status_code == 201
                assert (await pol.move_to("00101")).status_code == 200
                chg = SmfSim(httpx_transport(h2, sbi), supi, notify_uri=smf.url(f"/chg/{i}"))
                assert (await chg.create(requested=8 * GIB)).status == 201
                for _ in range(3):  # 24 GiB: past the 15 GiB allowance / member cap
                    ex = await chg.update(Usage(chg.granted // 2, chg.granted // 2),
                                          requested=8 * GIB)
                    assert ex.status == 200, ex.response
                assert (await chg.retransmit()).status == 200
                await smf.wait_for(lambda r, i=i: r.path == f"/pol/{i}/update", timeout_s=10)
                assert (await chg.release(Usage(1, 1))).status == 204
                assert (await pol.get()).status_code == 200
                assert (await pol.delete()).status_code == 204
            # Effects finish in the background (EDRs, notification settlement); the test
            # looks with a client of its own, which is not recorded.
            edrs = watcher[settings.mongodb_database]["edrs"]
            async with asyncio.timeout(30):
                while await edrs.count_documents(  # noqa: ASYNC110 (polls the database)
                        {"supi": {"$in": [single, owner]}}) < 10:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            recorder.on = False
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()
        await watcher.close()

    seen = list(recorder.seen)
    problems: list[str] = []
    targeted: dict[str, int] = {}
    for s in seen:
        key = shards.SHARD_KEYS.get(s.collection)
        if key is None:
            problems.append(f"{s.command} on {s.collection}, which has no shard key in "
                            "nf.store.shards.SHARD_KEYS")
            continue
        if s.document is not None:
            missing = [f for f in key.names if f not in s.document]
            if missing:
                problems.append(f"insert into {s.collection} without {missing}")
            else:
                targeted[s.collection] = targeted.get(s.collection, 0) + 1
            continue
        assert s.filter is not None
        if shards.targets(key, s.filter):
            targeted[s.collection] = targeted.get(s.collection, 0) + 1
            continue
        shape = shards.cross_shard(s.collection, s.filter)
        if shape is None:
            problems.append(f"{s.command} on {s.collection} without its shard key "
                            f"{key.names}: filter {json.dumps(s.filter, default=str)}")
        elif shape.kind == "sweep" and s.in_request:
            problems.append(f"the sweep {sorted(shape.fields)} on {s.collection} ran inside "
                            "a request")
    assert not problems, "\n".join(dict.fromkeys(problems))
    # The flow really went through the stores (a recorder that saw nothing proves nothing).
    assert sum(targeted.values()) >= 30, targeted
    assert {"ledger_wallets", "sm_policies", "edrs"} <= set(targeted), targeted
    assert any(s.in_request for s in seen)


def test_every_background_sweep_of_the_wallets_is_a_listed_cross_shard_query() -> None:
    """The sweeps run by timers, whether or not a request happens to run beside them:
    the flow above sees only those that fire while it records, so each one's filter is
    checked here, built the way the sweeper builds it."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for flt in ({"due_res": {"$lte": now}}, {"due_life": {"$lte": now}},
                {"due_cs": {"$lte": now}},
                {"fx": {"$elemMatch": {"at": {"$lte": now}, "k": None}}}):
        shape = shards.cross_shard("ledger_wallets", flt)
        assert shape is not None and shape.kind == "sweep", flt
    shape = shards.cross_shard("charging_sessions",
                               {"fx": {"$elemMatch": {"at": {"$lte": now}, "k": None}}})
    assert shape is not None and shape.kind == "sweep"
