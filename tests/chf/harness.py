"""An in-process NF (every part, real database, fake clock) with its lifespan running, for
the CHF's app-tier tests. Every request and answer goes through the 3GPP document and our
own description of the service (``openapi/chf.yaml``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from nf.chf.part import ChfPart
from nf.clock import FakeClock
from nf.config import Settings
from nf.edr.writer import EdrWriter
from nf.ledger.mongo import MongoLedger
from nf.ledger.part import LedgerPart
from nf.notify.outbox import MongoOutbox
from nf.runtime import Runtime
from nf.store.mongo import Db
from nf.wiring import create_app
from tests import conformance as c
from tests.smf_sim import SmfSim

ROOT = Path(__file__).resolve().parents[2]
OURS = ROOT / "openapi" / "chf.yaml"
CHF_ROOT = "/nchf-convergedcharging/v3"
MIB = 1024 * 1024
GIB = 1024 * MIB


def validate_exchange(method: str, path: str, body: Any, status: int, raw: bytes | None,
                      content_type: str, headers: dict[str, str]) -> None:
    for doc in (c.CHF, str(OURS)):
        if body is not None:
            c.validate_request(doc, method, path, body)
        c.validate_response(doc, method, path, status, raw or None,
                            content_type=content_type, headers=headers)


@dataclass
class Nf:
    app: Quart
    client: TestClientProtocol
    rt: Runtime
    ledger: MongoLedger
    chf: ChfPart
    outbox: MongoOutbox
    edrs: EdrWriter
    clock: FakeClock
    db: Db

    async def post(self, path: str, body: Any, *, validate: bool = True
                   ) -> tuple[int, Any, dict[str, str]]:
        """POST through the app; request and answer checked against both documents."""
        r = await self.client.post(path, json=body)
        raw = await r.get_data()
        ctype = r.headers.get("content-type", "application/json").split(";")[0]
        headers = {k.lower(): v for k, v in r.headers.items()}
        if validate:
            validate_exchange("POST", path, body, r.status_code, raw, ctype, headers)
        return r.status_code, (await r.get_json()) if raw else None, headers

    def smf(self, supi: str, **kw: Any) -> SmfSim:
        """A simulated SMF whose requests go through this app (and are validated)."""
        return SmfSim(self.post, supi, **kw)


async def settled(db: Db, timeout_s: float = 10.0) -> None:
    """Wait until every pending effect (EDRs of charging steps, counter changes) has been
    delivered: they leave after the answer (``nf.effects``)."""
    pending = {"fx.at": {"$exists": True}}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await db["charging_sessions"].count_documents(pending) \
            or await db["ledger_wallets"].count_documents(pending):
        assert asyncio.get_running_loop().time() < deadline, "effects still pending"
        await asyncio.sleep(0.02)


def with_grant(settings: Settings, grant_bytes: int) -> Settings:
    """``settings`` with every host network granting ``grant_bytes`` at a time."""
    nets = [n.model_copy(update={"default_grant_bytes": grant_bytes})
            for n in settings.networks]
    return settings.model_copy(update={"networks": nets})


async def build(settings: Settings, db: Db, clock: FakeClock) -> AsyncIterator[Nf]:
    app = create_app(settings, role="sbi", clock=clock, db=db)
    async with app.test_app():
        rt: Runtime = app.extensions["nf.runtime"]
        parts = app.extensions["nf.parts"]
        ledger = next(p for p in parts if isinstance(p, LedgerPart)).ledger
        chf = next(p for p in parts if isinstance(p, ChfPart))
        outbox = next(p for p in parts if isinstance(p, MongoOutbox))
        edrs = next(p for p in parts if isinstance(p, EdrWriter))
        yield Nf(app, app.test_client(), rt, ledger, chf, outbox, edrs, clock, db)


@asynccontextmanager
async def two(settings: Settings, db: Db, clock: FakeClock) -> AsyncIterator[tuple[Nf, Nf]]:
    """Two NF instances (two processes' worth of state) on one database and clock."""
    async with aclosing(build(settings, db, clock)) as ga, \
            aclosing(build(settings, db, clock)) as gb:
        yield await ga.__anext__(), await gb.__anext__()


@pytest.fixture
async def nf(settings: Settings, db: Db, clock: FakeClock) -> AsyncIterator[Nf]:
    async for x in build(settings, db, clock):
        yield x
