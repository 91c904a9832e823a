"""OAM readiness follows the database: a stopped database server makes /readyz 503, and it
recovers when the server is back. Uses its own database server, which it stops."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nf.clock import FakeClock
from nf.config import Settings
from nf.store import embedded
from nf.wiring import create_app


async def test_readyz_is_503_while_the_database_is_down(
    settings: Settings, clock: FakeClock, tmp_path: Path,
) -> None:
    prefer = os.environ.get("NF_TEST_DB", "auto")
    server = embedded.start(tmp_path / "db", prefer=prefer)
    try:
        s = settings.model_copy(update={"mongodb_uri": server.uri, "mongodb_timeout_ms": 500})
        app = create_app(s, role="oam", clock=clock, parts=[])
        async with app.test_app() as ta:
            client = ta.test_client()
            r = await client.get("/readyz")
            assert r.status_code == 200 and (await r.get_json())["database"] is True
            server.stop()
            started = time.monotonic()
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert await r.get_json() == {"status": "not-ready", "database": False,
                                          "indexes": True, "sbi": True}
            assert time.monotonic() - started < 5  # a probe never hangs
            # Liveness does not depend on the database.
            assert (await client.get("/healthz")).status_code == 200
            server = embedded.start(tmp_path / "db", port=server.port, prefer=prefer)
            deadline = time.monotonic() + 20
            while (r := await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, await r.get_data()
            assert (await r.get_json())["status"] == "ready"
    finally:
        server.stop()
