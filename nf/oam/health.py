"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable

from quart import Blueprint, Response

from nf.runtime import Runtime
from nf.store.mongo import ping


def health_blueprint(rt: Runtime, ready: Callable[[], bool]) -> Blueprint:
    bp = Blueprint("oam_health", __name__)

    @bp.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"alive"}', content_type="application/json")

    @bp.get("/readyz")
    async def readyz() -> Response:
        db_ok = await ping(rt.db)
        ok = db_ok and ready()
        body = (f'{{"status":"{"ready" if ok else "not-ready"}",'
                f'"database":{str(db_ok).lower()},"indexes":{str(ready()).lower()}}}')
        return Response(body, status=200 if ok else 503, content_type="application/json")

    @bp.get("/metrics")
    async def metrics() -> Response:
        return Response(rt.metrics.render(),
                        content_type="text/plain; version=0.0.4; charset=utf-8")

    return bp
