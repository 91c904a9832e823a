"""The operator overview's figures against the database: a seeded mix of sessions, policies,
EDRs and outbox entries, compared with direct counts; and the number of database commands
one view costs, which does not grow with the number of brands."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient, monitoring

from nf.clock import FakeClock
from nf.config import Settings
from nf.oam.console.data import ConsoleData
from nf.runtime import Runtime
from nf.store.mongo import Db, Doc
from nf.wiring import create_app
from tests.app.test_console import C, _sign_in

BRANDS = ("lumen", "harbor", "cartwheel", "nimbus", "pebble", "orbit", "tidal", "sprout",
          "quarry")
NETWORKS = ("northwind", "bluepeak", "redmoor")
ROW = re.compile(r'<tr><th scope="row">([^<]+)</th><td>([^<]+)</td><td>(\d+)</td>'
                 r'<td>(\d+)</td><td>(\d+)</td><td>([0-9.]+)</td></tr>')
IGNORED = {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo",
           "saslStart", "saslContinue"}


class Commands(monitoring.CommandListener):
    """The commands sent to one database while ``on``."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.on = False
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on and event.database_name == self.database \
                and event.command_name not in IGNORED:
            with self._lock:
                self.seen.append((event.command_name,
                                  str(event.command.get(event.command_name, ""))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take(self) -> list[tuple[str, str]]:
        with self._lock:
            out, self.seen = self.seen, []
        return out


@pytest.fixture
async def watched(settings: Settings) -> AsyncIterator[tuple[Db, Commands]]:
    rec = Commands(settings.mongodb_database)
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True,
                                                     event_listeners=[rec])
    yield client[settings.mongodb_database], rec
    await client.close()


async def _seed(db: Db, clock: FakeClock) -> None:
    """A mix over every brand and network, plus records the overview must leave out."""
    rnd = random.Random(16)
    now = clock.now()
    charging: list[Doc] = []
    policies: list[Doc] = []
    edrs: list[Doc] = []
    n = 0
    for b in (*BRANDS, "retired-brand"):
        for net in (*NETWORKS, "unknown-net"):
            for _ in range(rnd.randint(0, 6)):
                n += 1
                supi = f"imsi-0010100000{n % 40:05d}"  # some subscribers hold several
                charging.append({"brand": b, "host_network": net, "supi": supi,
                                 "status": rnd.choice(["open", "open", "closed"])})
                p: Doc = {"brand": b, "hostNetwork": net, "supi": supi,
                          "reason": rnd.choice(["plan", "throttled", "throttled", "boost"])}
                if rnd.random() < 0.25:
                    p["ended"] = now
                policies.append(p)
                edrs.append({"kind": rnd.choice(["charging", "charging", "policy"]),
                             "brand": b, "host_network": net, "supi": supi,
                             "time": now - timedelta(seconds=rnd.choice([5, 30, 59, 61,
                                                                         600]))})
    charging.append({"status": "open", "supi": "imsi-001010000099999"})  # no brand
    await db["charging_sessions"].insert_many(charging)
    await db["sm_policies"].insert_many(policies)
    await db["edrs"].insert_many(edrs)
    await db["outbox"].insert_many([{"status": s} for s in
                                    ("pending", "pending", "sent", "pending", "failed")])


async def _expected(db: Db, clock: FakeClock) -> dict[tuple[str, str], tuple[int, ...]]:
    since = clock.now() - timedelta(seconds=60)
    out: dict[tuple[str, str], tuple[int, ...]] = {}
    for b in BRANDS:
        for n in NETWORKS:
            live = {"ended": {"$exists": False}, "brand": b, "hostNetwork": n}
            out[(b, n)] = (
                await db["charging_sessions"].count_documents(
                    {"status": "open", "brand": b, "host_network": n}),
                await db["sm_policies"].count_documents(live),
                len(await db["sm_policies"].distinct("supi", {**live,
                                                              "reason": "throttled"})),
                await db["edrs"].count_documents({"kind": "charging", "brand": b,
                                                  "host_network": n,
                                                  "time": {"$gte": since}}))
    return out


async def test_overview_figures_match_the_database_in_few_commands(
        settings: Settings, db: Db, clock: FakeClock,
        watched: tuple[Db, Commands]) -> None:
    wdb, rec = watched
    app = create_app(settings, role="oam", db=wdb, clock=clock)
    await _seed(db, clock)
    want = await _expected(db, clock)
    assert sum(v[2] for v in want.values()) > 5  # the mix has throttled subscribers
    assert any(v[1] > v[2] for v in want.values() if v[2])  # ... not one per session
    c, _ = await _sign_in(app, "demo-admin-key")
    rec.take()
    rec.on = True
    r = await c.get(f"{C}/overview")
    rec.on = False
    html = (await r.get_data()).decode()
    assert r.status_code == 200
    got = {(m[1], m[2]): (int(m[3]), int(m[4]), int(m[5]), float(m[6]))
           for m in ROW.finditer(html)}
    assert set(got) == set(want)  # every brand of the catalogue × every host network
    for key, (charging, policy, throttled, recent) in want.items():
        assert got[key] == (charging, policy, throttled, round(recent / 60, 2)), key
    assert f'id="backlog">{3}<' in html
    sent = rec.take()
    # The session's one read, then one aggregation per collection (``count_documents``
    # is one too).
    assert sent[0] == ("find", "console_sessions"), sent
    assert sorted(coll for _, coll in sent[1:]) == ["charging_sessions", "edrs", "outbox",
                                                    "sm_policies"], sent

    # Ten times the brands: the same commands.
    data = ConsoleData(Runtime(settings=settings, clock=clock, db=wdb, role="oam"))
    many = [*BRANDS, *(f"brand-{i}" for i in range(81))]
    rec.on = True
    rows, backlog = await data.overview(many, list(NETWORKS), clock.now())
    rec.on = False
    assert len(rows) == len(many) * len(NETWORKS) and backlog == 3
    assert len(rec.take()) == len(sent) - 1  # the same aggregations (no session here)
    assert all(r.charging_sessions == 0 for r in rows if r.brand.startswith("brand-"))
