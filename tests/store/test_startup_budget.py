"""At start, a large database just restarted answers its first operations slowly (seconds
per 100,000 documents, the warm-up's job: ``nf.store.mongo.warm_up``). Every database
operation of the start (each part's index checks, the warm-up) runs under
``mongodb_startup_timeout_s``, not the per-operation ``mongodb_timeout_ms``, with a
progress line every 10 s; requests afterwards are bounded by ``mongodb_timeout_ms`` again.
(``make bench-scale`` shows it at 1 million wallets.)"""

from __future__ import annotations

import asyncio
import logging

import pytest
from pymongo import _csot
from quart import Blueprint

from nf.clock import FakeClock
from nf.config import Settings
from nf.runtime import Role, Worker
from nf.store.mongo import Db, make_client, wants_warm_up
from nf.wiring import create_app


class BudgetProbe:
    """A part that notes the operation deadline in force while the start checks indexes,
    and does one real database operation under it."""

    name = "probe"

    def __init__(self, db: Db) -> None:
        self.db = db
        self.deadline_s: float | None = None
        self.indexed = self.started = 0

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        self.indexed += 1
        self.deadline_s = _csot.get_timeout()
        await self.db["probe"].insert_one({"_id": 1})

    async def start(self) -> None:
        self.started += 1

    def workers(self) -> list[Worker]:
        return []


async def test_start_runs_under_its_own_budget_and_says_so(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    s = settings.model_copy(update={"mongodb_timeout_ms": 100,
                                    "mongodb_startup_timeout_s": 600.0})
    client = make_client(s)  # every operation bounded to 100 ms, except at start
    db = client[s.mongodb_database]
    probe = BudgetProbe(db)
    try:
        app = create_app(s, role="oam", db=db, clock=FakeClock(), parts=[probe])
        with caplog.at_level(logging.INFO, logger="nf.app"):
            async with app.test_app() as ta:
                assert (await ta.test_client().get("/readyz")).status_code == 200
                assert _csot.get_timeout() is None  # outside the start: the client's 100 ms
    finally:
        await client.drop_database(s.mongodb_database)
        await client.close()
    assert probe.deadline_s is not None and 590 < probe.deadline_s <= 600
    warmed = [r for r in caplog.records if r.getMessage() == "database warmed up"]
    assert warmed and "probe" in warmed[0].__dict__["fields"]["ms"]


async def test_only_the_process_told_to_builds_indexes(settings: Settings, db: Db) -> None:
    """Under ``nf serve`` the SBI workers leave index checks to the OAM process (two
    processes building one new index on a large collection kept the embedded database
    retrying write conflicts)."""
    async def index_names() -> set[str]:
        if "ledger_wallets" not in await db.list_collection_names():
            return set()
        return {i["name"] async for i in await db["ledger_wallets"].list_indexes()}

    sbi = create_app(settings, role="sbi", db=db, clock=FakeClock(), build_indexes=False)
    async with sbi.test_app():
        assert await index_names() <= {"_id_"}
    oam = create_app(settings, role="oam", db=db, clock=FakeClock())
    async with oam.test_app():
        assert {"supis", "due_res", "fx_at"} <= await index_names()


async def test_every_process_runs_the_start_hooks(settings: Settings, db: Db) -> None:
    """A part's start work (the OAuth2 keys) runs in every process, its index checks only
    in the process that builds indexes."""
    for build, indexed in ((False, 0), (True, 1)):
        probe = BudgetProbe(db)
        app = create_app(settings, role="sbi", db=db, clock=FakeClock(), parts=[probe],
                         build_indexes=build)
        async with app.test_app():
            assert (probe.indexed, probe.started) == (indexed, 1)


async def test_the_warm_up_follows_its_setting(
        settings: Settings, db: Db, caplog: pytest.LogCaptureFixture) -> None:
    """Unset, the start warms up the embedded database only (the tests' server is one);
    ``mongodb_warm_up: false`` skips it, ``true`` forces it on any server."""
    assert await wants_warm_up(db, None)
    assert await wants_warm_up(db, True) and not await wants_warm_up(db, False)
    s = settings.model_copy(update={"mongodb_warm_up": False})
    app = create_app(s, role="oam", db=db, clock=FakeClock(), parts=[BudgetProbe(db)])
    with caplog.at_level(logging.INFO, logger="nf.app"):
        async with app.test_app() as ta:
            assert (await ta.test_client().get("/readyz")).status_code == 200
    said = [r.getMessage() for r in caplog.records]
    assert "started" in said and "database warmed up" not in said


class SlowIndexes(BudgetProbe):
    """A part whose index checks last until the test lets them finish."""

    def __init__(self, db: Db) -> None:
        super().__init__(db)
        self.checking = asyncio.Event()
        self.finish = asyncio.Event()

    async def ensure_indexes(self) -> None:
        self.checking.set()
        await self.finish.wait()


async def test_the_start_says_what_it_waits_for_on_the_apps_clock(
        settings: Settings, db: Db, caplog: pytest.LogCaptureFixture) -> None:
    """The progress line of a long start comes every 10 s of the injected clock: a test
    moves the clock instead of waiting 10 s."""
    clock = FakeClock(timers=True)
    probe = SlowIndexes(db)
    app = create_app(settings, role="oam", db=db, clock=clock, parts=[probe])
    waiting = "starting: waiting for the database"
    with caplog.at_level(logging.INFO, logger="nf.app"):
        started = asyncio.create_task(app.startup())
        await asyncio.wait_for(probe.checking.wait(), 5)
        clock.advance(9.9)
        await asyncio.sleep(0.05)
        assert waiting not in [r.getMessage() for r in caplog.records]
        clock.advance(0.2)
        for _ in range(100):
            if waiting in [r.getMessage() for r in caplog.records]:
                break
            await asyncio.sleep(0.01)
        lines = [r for r in caplog.records if r.getMessage() == waiting]
        assert lines and lines[0].__dict__["fields"]["step"] == "index checks (probe)"
        assert lines[0].__dict__["fields"]["waited_s"] == 10
        probe.finish.set()
        await asyncio.wait_for(started, 5)
        await app.shutdown()
