"""Liveness, readiness and Prometheus metrics on the OAM port.

``/healthz`` says the process answers; ``/readyz`` says it should get traffic (database
reachable, every part's indexes created and, under ``nf serve``, the SBI port listening);
``/metrics`` is Prometheus text, aggregated
over all worker processes when ``PROMETHEUS_MULTIPROC_DIR`` is set. Never on the SBI port
(apart from the trivial ``/healthz``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from quart import Blueprint, Response

from nf.runtime import Runtime
from nf.settings.server import sbi_listener
from nf.store.mongo import ping

# A readiness probe must answer quickly even while the database hangs.
READINESS_DB_TIMEOUT_S = 2.0
READINESS_SBI_TIMEOUT_S = 0.5


async def sbi_listening(host: str, port: int) -> bool:
    """Whether the SBI server accepts TCP connections (it runs in another process)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                           READINESS_SBI_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def liveness_blueprint(name: str) -> Blueprint:
    """``GET /healthz``: the process answers. Served on both ports."""
    bp = Blueprint(name, __name__)

    @bp.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"alive"}', content_type="application/json")

    return bp


def health_blueprint(rt: Runtime, ready: Callable[[], bool]) -> Blueprint:
    """Liveness, readiness and metrics for the OAM port."""
    bp = Blueprint("oam_health", __name__)
    bp.register_blueprint(liveness_blueprint("oam_liveness"))
    timeout_s = min(READINESS_DB_TIMEOUT_S, rt.settings.mongodb_timeout_ms / 1000)

    @bp.get("/readyz")
    async def readyz() -> Response:
        try:
            db_ok = await asyncio.wait_for(ping(rt.db), timeout=timeout_s)
        except TimeoutError:
            db_ok = False
        indexes = ready()
        settings = rt.settings
        sbi_ok = True
        if settings.server.readyz_checks_sbi:  # the shared port and each host network's own
            for net in [None, *settings.listener_networks()]:
                own = sbi_listener(settings.server, net)
                sbi_ok = sbi_ok and await sbi_listening(own.host, own.port)
        ok = db_ok and indexes and sbi_ok
        rt.metrics.ready.set(1 if ok else 0)
        body: dict[str, object] = {"status": "ready" if ok else "not-ready", "database": db_ok,
                "indexes": indexes, "sbi": sbi_ok}
        for name, report in rt.reports.items():
            body[name] = report()
        return Response(json.dumps(body), status=200 if ok else 503,
                        content_type="application/json")

    @bp.get("/metrics")
    async def metrics() -> Response:
        return Response(rt.metrics.render(),
                        content_type="text/plain; version=0.0.4; charset=utf-8")

    return bp
