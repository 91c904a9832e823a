"""Connecting to MongoDB, creating indexes, translating driver errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from nf.config import Settings
from nf.errors import StoreUnavailable

Doc = dict[str, Any]
Db = AsyncDatabase[Doc]
IndexSetup = Callable[[Db], Awaitable[None]]


def make_client(settings: Settings) -> AsyncMongoClient[Doc]:
    """A client with bounded pool and timeouts; aware UTC datetimes both ways."""
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        maxPoolSize=settings.mongodb_max_pool_size,
        minPoolSize=min(settings.mongodb_min_pool_size, settings.mongodb_max_pool_size),
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        timeoutMS=settings.mongodb_timeout_ms,
        appname=f"mvno-nf/{settings.instance_id}",
    )


@asynccontextmanager
async def translate_errors(what: str) -> AsyncIterator[None]:
    """The one choke point where driver errors become ``StoreUnavailable``."""
    try:
        yield
    except ConnectionFailure as e:
        raise StoreUnavailable(f"database unreachable during {what}") from e
    except OperationFailure as e:
        raise StoreUnavailable(f"database refused {what} (code {e.code})") from e
    except PyMongoError as e:
        raise StoreUnavailable(f"database error during {what}: {type(e).__name__}") from e


async def ping(db: Db) -> bool:
    try:
        await db.command("ping")
    except PyMongoError:
        return False
    return True
