"""Shared fixtures: one real database server per test run, one database per test, and
NF servers on ephemeral ports for end-to-end tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from nf.clock import FakeClock
from nf.config import Settings
from nf.store import embedded
from nf.store.mongo import Db, Doc

ROOT = Path(__file__).resolve().parents[1]
SHARED_3GPP = ROOT.parent / "shared" / "3gpp" / "Rel-17"


@pytest.fixture(scope="session")
def db_server() -> Iterator[embedded.EmbeddedDb]:
    """SecantusDB (Rust server if built, else Python), or ``NF_TEST_MONGODB_URI``."""
    uri = os.environ.get("NF_TEST_MONGODB_URI")
    if uri:
        pytest.skip("external database not supported by this fixture")
    server = embedded.start(None, prefer=os.environ.get("NF_TEST_DB", "auto"))
    yield server
    server.stop()


@pytest.fixture
def db_name() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
def settings(db_server: embedded.EmbeddedDb, db_name: str) -> Settings:
    return Settings.load(
        ROOT / "tests" / "data" / "nf-test.yaml",
        mongodb_uri=db_server.uri,
        mongodb_database=db_name,
    )


@pytest.fixture
async def mongo(settings: Settings) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    yield client
    await client.drop_database(settings.mongodb_database)
    await client.close()


@pytest.fixture
def db(mongo: AsyncMongoClient[Doc], settings: Settings) -> Db:
    return mongo[settings.mongodb_database]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
