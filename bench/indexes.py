"""Every index the NF creates at start, created now: before a bulk load (the seeding
commands call it), so that the NF's first start on a large population builds none.

Building a new index on a collection of a million wallets while anything else writes to
it kept the embedded database retrying write conflicts for minutes; built on the empty
collection, each index grows with the load instead."""

from __future__ import annotations

from nf.clock import FakeClock
from nf.config import Settings
from nf.store.mongo import Db
from nf.wiring import create_app


async def ensure_all(settings: Settings, db: Db) -> None:
    """Run every part's index checks (the parts ``nf serve`` builds) against ``db``."""
    app = create_app(settings, role="oam", db=db, clock=FakeClock())
    for part in app.extensions["nf.parts"]:
        await part.ensure_indexes()
