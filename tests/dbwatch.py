"""The test database through a client that reports its commands to a listener, for the
tests that count what one operation costs the database.

Pending effects are delivered by the drain alone in the settings handed back (immediate
delivery off), so a later write of an effect (an EDR's insert) is not counted with the
operation that caused it. The database is dropped at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import AsyncMongoClient, monitoring

from nf.config import Settings
from nf.store.mongo import Db, Doc


@asynccontextmanager
async def watched(settings: Settings, listener: monitoring.CommandListener
                  ) -> AsyncIterator[tuple[Db, Settings]]:
    """(the database, the settings to build the app with)."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True,
                                                     event_listeners=[listener])
    quiet = settings.model_copy(update={"effects": settings.effects.model_copy(
        update={"immediate": False})})
    try:
        yield client[settings.mongodb_database], quiet
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()
