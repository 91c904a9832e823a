"""Connecting to MongoDB, creating indexes, translating driver errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from nf.config import Settings
from nf.errors import StoreUnavailable
from nf.store.opwatch import OpWatch

Doc = dict[str, Any]
Db = AsyncDatabase[Doc]
IndexSetup = Callable[[Db], Awaitable[None]]
Collection = AsyncCollection[Doc]

# The write concern of everything money depends on (wallets, charging sessions, policies,
# the outbox, EDRs): acknowledged only once a majority of the replica set has the write in
# its journal, so an acknowledged grant, debit, EDR or notification survives the loss of
# any minority of nodes and a crash of every process. On a single node (the embedded
# database) "majority" is that node; the journal flush there is the server's own
# ``--sync-on-commit``. ``wtimeout`` bounds how long a write waits for a lagging majority;
# past it the request fails (503) instead of hanging.
MONEY_WRITE_CONCERN = WriteConcern(w="majority", j=True, wtimeout=10_000)


def money_collection(db: Db, name: str) -> Collection:
    """A collection on the money path: every write uses ``MONEY_WRITE_CONCERN``."""
    return db.get_collection(name, write_concern=MONEY_WRITE_CONCERN)


def make_client(settings: Settings, watch: OpWatch | None = None) -> AsyncMongoClient[Doc]:
    """A client with bounded pool and timeouts; aware UTC datetimes both ways. ``watch``
    (default: a new one, unless ``mongodb_op_watch`` is off) sees every command: slow ones
    are logged."""
    if watch is None and settings.mongodb_op_watch:
        watch = OpWatch(settings.mongodb_slow_op_ms)
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        maxPoolSize=settings.mongodb_max_pool_size,
        minPoolSize=min(settings.mongodb_min_pool_size, settings.mongodb_max_pool_size),
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        timeoutMS=settings.mongodb_timeout_ms,
        appname=f"mvno-nf/{settings.instance_id}",
        event_listeners=[watch] if watch is not None else [],
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


# The key of the document no collection holds: the warm-up's writes match nothing.
_NO_SUCH_ID = "\x00warm-up"


async def warm_up(db: Db) -> dict[str, float]:
    """Write nothing to every collection, one collection after the other; returns the
    milliseconds each took.

    SecantusDB pays a one-time cost per collection on the first write after it opens the
    collection (a restart, an index build): about 14 ms per 1,000 documents. Paid by many
    concurrent requests at once it turned into a stall of every operation for seconds
    (7 s at 20,000 wallets, past the 5 s timeout at 100,000). One write that matches no
    document pays it alone, before traffic arrives. On MongoDB each takes a millisecond."""
    took: dict[str, float] = {}
    async with translate_errors("database warm-up"):
        for name in sorted(await db.list_collection_names()):
            if name.startswith("system."):
                continue
            t0 = time.perf_counter()
            await db[name].update_one({"_id": _NO_SUCH_ID}, {"$set": {"_": 1}})
            took[name] = round((time.perf_counter() - t0) * 1000, 1)
    return took


async def wants_warm_up(db: Db, setting: bool | None) -> bool:
    """Whether the start warms the database up (``mongodb_warm_up``): as set, or when
    unset, where the server is the embedded database (its ``buildInfo`` names its own
    version beside the MongoDB version it speaks)."""
    if setting is not None:
        return setting
    async with translate_errors("database build info"):
        info = await db.client.admin.command("buildInfo")
    return "secantusVersion" in info


async def ping(db: Db) -> bool:
    try:
        await db.command("ping")
    except PyMongoError:
        return False
    return True
