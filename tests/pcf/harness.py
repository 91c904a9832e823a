"""An in-process NF (every part, real database, fake clock) with its lifespan running, for
the PCF's app-tier tests. Notifications leave over real HTTP/2 to ``tests.peers``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from pymongo import AsyncMongoClient
from quart import Quart
from quart.typing import TestClientProtocol

from nf.clock import FakeClock
from nf.config import Settings
from nf.effects import Drain
from nf.ledger.mongo import MongoLedger
from nf.ledger.part import LedgerPart
from nf.ledger.port import ChargeOutcome, CounterChange
from nf.notify.outbox import MongoOutbox
from nf.pcf import part as pcf_part
from nf.pcf.part import PcfPart
from nf.runtime import Runtime
from nf.slc.part import SlcPart
from nf.store.embedded import free_port
from nf.store.mongo import Db, Doc
from nf.wiring import create_app
from tests import conformance as c
from tests.ledger import helpers as h
from tests.peers import NotificationReceiver, Received
from tests.smf_sim import SmfSim, Usage, session_ambr

PCF_ROOT = "/npcf-smpolicycontrol/v1"
SLC_ROOT = "/nchf-spendinglimitcontrol/v1"
ROOT = Path(__file__).resolve().parents[2]
OURS = {c.PCF: ROOT / "openapi" / "pcf.yaml", c.SLC: ROOT / "openapi" / "slc.yaml"}
GIB = 1024**3
UNLIMITED_CAP = 15360 * 1024 * 1024  # lumen-unlimited: 15 GiB at full speed


@dataclass
class Nf:
    app: Quart
    client: TestClientProtocol
    rt: Runtime
    ledger: MongoLedger
    pcf: PcfPart
    slc: SlcPart
    outbox: MongoOutbox
    clock: FakeClock
    db: Db
    effects: Drain[CounterChange]

    async def call(self, method: str, path: str, body: Any = None, *,
                   spec: str = c.PCF, valid_request: bool = True
                   ) -> tuple[int, Any, dict[str, str]]:
        """One request through the app; request and answer validated against the 3GPP
        document ``spec`` and against our own description of the service."""
        docs = [spec, str(OURS[spec])]
        if body is not None and valid_request:
            for d in docs:
                c.validate_request(d, method, path, body)
        r = await self.client.open(path, method=method, json=body)
        raw = await r.get_data()
        ctype = r.headers.get("content-type", "application/json").split(";")[0]
        headers = dict(r.headers)
        for d in docs:
            c.validate_response(d, method, path, r.status_code, raw or None,
                                content_type=ctype, headers=headers)
        return r.status_code, (await r.get_json()) if raw else None, headers

    async def publish(self, changes: Sequence[CounterChange]) -> None:
        await self.rt.publish_counter_changes(changes)

    async def cross_cap(self, supi: str, cap: int = UNLIMITED_CAP, session: str = "c1",
                        publish: bool = True) -> ChargeOutcome:
        """Charge the whole full-speed allowance (as the CHF does). The ledger's pending
        effects deliver the change; with ``publish`` it is also published at once."""
        now = self.clock.now()
        first = await self.ledger.charge(h.step(supi, now, requested=cap, session=session,
                                                seq=1))
        if publish:
            await self.publish(first.counter_changes)
        second = await self.ledger.charge(h.step(supi, now, used=first.granted_bytes,
                                                 requested=1024 * 1024, session=session,
                                                 seq=2))
        if publish:
            await self.publish(second.counter_changes)
        return second

    async def delivery_failed(self, timeout_s: float = 5.0) -> None:
        """Wait until a delivery of pending counter changes failed."""
        failed = self.rt.metrics.effects_failed.labels("counter_changes")
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not failed._value.get():
            assert asyncio.get_running_loop().time() < deadline, "no delivery failed"
            await asyncio.sleep(0.02)

    async def sweep_effects(self) -> int:
        """Let the grace time pass and take over pending counter changes (as the sweeper
        of any process does)."""
        self.clock.advance(self.rt.settings.effects.sweep_grace_s + 1)
        return await self.effects.sweep_once()


def context(supi: str, notification_uri: str, plmn: str = h.HOME_PLMN,
            pdu_session_id: int = 1) -> dict[str, Any]:
    return {
        "supi": supi, "pduSessionId": pdu_session_id, "pduSessionType": "IPV4",
        "dnn": "internet", "notificationUri": notification_uri,
        "sliceInfo": {"sst": 1, "sd": "000001"},
        "servingNetwork": {"mcc": plmn[:3], "mnc": plmn[3:]},
        "ratType": "NR", "accessType": "3GPP_ACCESS",
    }


@pytest.fixture
async def nf(settings: Settings, db: Db, clock: FakeClock,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Nf]:
    # The tests call the periodic passes themselves (after moving the fake clock): the
    # workers run once at start and then stay out of the way.
    monkeypatch.setattr(pcf_part, "REVALIDATE_INTERVAL_S", 3600.0)
    app = create_app(settings, role="sbi", clock=clock, db=db)
    async with app.test_app():
        rt: Runtime = app.extensions["nf.runtime"]
        parts = app.extensions["nf.parts"]
        ledger_part = next(p for p in parts if isinstance(p, LedgerPart))
        ledger = ledger_part.ledger
        pcf = next(p for p in parts if isinstance(p, PcfPart))
        slc = next(p for p in parts if isinstance(p, SlcPart))
        outbox = next(p for p in parts if isinstance(p, MongoOutbox))
        yield Nf(app, app.test_client(), rt, ledger, pcf, slc, outbox, clock, db,
                 ledger_part.effects)


def ambr_of(r: Received) -> dict[str, str]:
    assert r.http_version == "2"
    c.validate_schema(c.PCF, "SmPolicyNotification", r.json)
    return session_ambr(r.json["smPolicyDecision"])


async def use_until_throttled(chg: SmfSim, smf: NotificationReceiver, path: str,
                               step: int = 2 * 1024 * 1024, limit: int = 40) -> Received:
    """Use each grant in full and ask for more, as a busy UE does, until the throttle for
    ``path`` arrives at the SMF; returns it."""
    for _ in range(limit):
        granted = chg.granted or step
        ex = await chg.update(Usage(granted // 4, granted - granted // 4, "QUOTA_THRESHOLD"),
                              requested=step)
        assert ex.status == 200, ex.response
        try:
            return await smf.wait_for(lambda r: r.path == path, timeout_s=0.3)
        except TimeoutError:
            continue
    raise AssertionError("the cap was never reached")


@contextmanager
def serving(settings: Settings, clock: FakeClock) -> Iterator[tuple[str, str]]:
    """Both ports of the NF (real HTTP/2, h2c, Hypercorn) in their own thread and event
    loop with their own database client, sharing the fake ``clock`` with the test; yields
    the SBI and OAM base URLs. Stops both (lifespan included) on exit."""
    ports = [free_port(), free_port()]
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        tasks = []
        for role, port in zip(("sbi", "oam"), ports, strict=True):
            app = create_app(settings, role=role, clock=clock,  # type: ignore[arg-type]
                             db=client[settings.mongodb_database])
            cfg = Config()
            cfg.bind = [f"127.0.0.1:{port}"]
            cfg.accesslog = None
            cfg.graceful_timeout = 1.0
            cfg.keep_alive_max_requests = 2**62
            tasks.append(asyncio.create_task(
                serve(app, cfg, shutdown_trigger=stop.wait)))  # type: ignore[arg-type]
        try:
            for port in ports:
                for _ in range(500):
                    try:
                        _r, w = await asyncio.open_connection("127.0.0.1", port)
                        w.close()
                        await w.wait_closed()
                        break
                    except OSError:
                        await asyncio.sleep(0.01)
            ready.set()
            await asyncio.gather(*tasks)
        finally:
            await client.close()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as e:  # reported to the test below
            box["error"] = e
            ready.set()

    thread = threading.Thread(target=run, name="nf-under-test", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in box:
        raise RuntimeError("the NF did not start") from box["error"]
    try:
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)
        if "error" in box:
            raise RuntimeError("the NF failed") from box["error"]
