"""Admission control, start-up and shut-down of one app, through Quart's test client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from pymongo.errors import InvalidOperation
from quart import Quart
from quart.typing import TestClientProtocol as Client

from nf.clock import FakeClock
from nf.config import Settings
from nf.runtime import Role, Runtime, Worker
from nf.sbi.guard import Guard
from nf.store.mongo import Db
from nf.wiring import create_app
from tests.e2e.probe_part import MARKERS, ProbePart


def with_server(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"server": settings.server.model_copy(update=changes)})


def probe_app(settings: Settings, db: Db | None, clock: FakeClock,
              role: Role = "sbi") -> tuple[Quart, list[ProbePart]]:
    made: list[ProbePart] = []

    def parts(rt: Runtime) -> list[ProbePart]:
        made.append(ProbePart(rt))
        return made

    return create_app(settings, role=role, clock=clock, db=db, parts=parts), made


async def wait_for(cond: object, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():  # type: ignore[operator]  # noqa: ASYNC110 (polls a handler's state)
            await asyncio.sleep(0.005)


@pytest.fixture
async def limited(settings: Settings, db: Db, clock: FakeClock
                  ) -> AsyncIterator[tuple[Client, ProbePart, Guard]]:
    app, (probe,) = probe_app(with_server(settings, max_inflight_requests=2), db, clock)
    async with app.test_app() as ta:
        yield ta.test_client(), probe, app.extensions["nf.guard"]


async def test_past_the_bound_is_503_nf_congestion_with_retry_after(
    limited: tuple[Client, ProbePart, Guard],
) -> None:
    client, probe, guard = limited
    held = [asyncio.create_task(client.get("/probe/block")) for _ in range(2)]
    await wait_for(lambda: probe.entered == 2)
    assert guard.inflight == 2
    r = await client.get("/probe/items/1")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["Retry-After"] == "1"
    body = await r.get_json()
    assert body["cause"] == "NF_CONGESTION" and body["status"] == 503
    assert "x-request-id" in r.headers
    # Probes are never refused.
    assert (await client.get("/healthz")).status_code == 200
    probe.release.set()
    done = await asyncio.gather(*held)
    assert [x.status_code for x in done] == [200, 200]
    assert guard.inflight == 0
    assert (await client.get("/probe/items/1")).status_code == 404
    text = guard.metrics.render().decode()
    assert 'nf_sbi_rejected_total{cause="NF_CONGESTION"} 1.0' in text


async def test_exceptions_do_not_leak_inflight_slots(
    limited: tuple[Client, ProbePart, Guard],
) -> None:
    client, _probe, guard = limited
    for _ in range(5):
        assert (await client.get("/probe/boom")).status_code == 500
        assert (await client.post("/probe/items", data=b"{")).status_code == 415
        assert (await client.get("/nowhere")).status_code == 404
    assert guard.inflight == 0
    r = await client.post("/probe/items", json={"name": "x", "quantity": 1})
    assert r.status_code == 201


async def test_client_disconnect_releases_the_slot(
    limited: tuple[Client, ProbePart, Guard],
) -> None:
    client, probe, guard = limited
    for _ in range(3):  # more disconnects than slots: a leak would show as 503
        before = probe.entered
        async with client.request("/probe/block") as conn:
            await conn.send_complete()
            await wait_for(lambda b=before: probe.entered == b + 1)  # type: ignore[misc]
            assert guard.inflight == 1
            await conn.disconnect()
        assert guard.inflight == 0
    assert probe.finished == 0  # the handlers were cancelled, not completed
    assert (await client.get("/probe/items/1")).status_code == 404
    text = guard.metrics.render().decode()
    assert 'nf_sbi_requests_total{operation="probe_sbi.block",status="aborted"} 3.0' in text
    assert "nf_sbi_inflight_requests 0.0" in text


async def test_start_creates_indexes_then_is_ready_and_runs_workers(
    settings: Settings, db: Db, clock: FakeClock,
) -> None:
    app, (probe,) = probe_app(settings, db, clock, role="oam")
    client = app.test_client()
    r = await client.get("/readyz")
    assert r.status_code == 503 and (await r.get_json())["indexes"] is False
    async with app.test_app():
        assert probe.indexed
        r = await client.get("/readyz")
        assert r.status_code == 200
        assert await r.get_json() == {"status": "ready", "database": True, "indexes": True,
                                      "sbi": True}
        async with asyncio.timeout(5):
            while await db[MARKERS].count_documents({"kind": "started"}) == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert await db[MARKERS].count_documents({"kind": "flushed"}) == 0
    # Shut down: the worker saw ``stopping`` and flushed before the app returned.
    assert await db[MARKERS].count_documents({"kind": "flushed"}) == 1
    r = await client.get("/readyz")
    assert r.status_code == 503


async def test_shutdown_closes_the_database_client_it_opened(
    settings: Settings, clock: FakeClock,
) -> None:
    app, _ = probe_app(settings, None, clock)
    async with app.test_app() as ta:
        r = await ta.test_client().get("/probe/items/1")
        assert r.status_code == 404
        rt: Runtime = app.extensions["nf.runtime"]
        assert (await rt.db.command("ping"))["ok"] == 1.0
    with pytest.raises(InvalidOperation):
        await rt.db.command("ping")


class _FlakyPart:
    """A worker that fails twice before running properly, and one that ignores stopping."""

    name = "flaky"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.attempts = 0
        self.stubborn_cancelled = False

    def blueprints(self, role: Role) -> list[object]:
        return []

    async def ensure_indexes(self) -> None:
        return None

    def workers(self) -> list[Worker]:
        return [self._flaky, self._stubborn]

    async def _flaky(self) -> None:
        self.attempts += 1
        if self.attempts <= 2:
            raise RuntimeError("worker bug")
        await self.rt.stopping.wait()

    async def _stubborn(self) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.stubborn_cancelled = True
            raise


async def test_failed_workers_restart_and_stubborn_ones_are_cancelled_after_grace(
    settings: Settings, db: Db, clock: FakeClock, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "nf.app")
    made: list[_FlakyPart] = []

    def parts(rt: Runtime) -> list[_FlakyPart]:
        made.append(_FlakyPart(rt))
        return made

    app = create_app(with_server(settings, shutdown_grace_s=0.3), role="sbi", clock=clock,
                     db=db, parts=parts)  # type: ignore[arg-type]
    (part,) = made
    async with app.test_app() as ta:
        await wait_for(lambda: part.attempts == 3, timeout_s=10)
        # The app keeps answering while workers fail.
        assert (await ta.test_client().get("/healthz")).status_code == 200
    assert part.stubborn_cancelled
    failures = [r for r in caplog.records if r.getMessage().startswith("background worker")]
    assert len(failures) == 2
    stopped = [r for r in caplog.records if r.getMessage() == "stopped"]
    assert stopped and stopped[-1].fields["workers_flushed"] is False  # type: ignore[attr-defined]
