"""The app factory. ``create_app`` builds one Quart app for one port (role).

The SBI role serves the 3GPP services (CHF, PCF) to SMFs; the OAM role serves health,
readiness, metrics and the provisioning API. Both roles run the background workers
(outbox senders, EDR writer, sweepers), which coordinate through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence

from pymongo import AsyncMongoClient
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from nf import logs
from nf.clock import Clock, SystemClock
from nf.config import Settings
from nf.errors import (
    Congestion,
    MethodNotAllowed,
    NfError,
    NotFound,
    PayloadTooLarge,
)
from nf.runtime import Part, Role, Runtime
from nf.sbi.problem import problem_response
from nf.store.mongo import Db, Doc, make_client, ping

log = logging.getLogger("nf.app")


def _http_error(e: HTTPException) -> NfError:
    code = e.code or 500
    if code == 404:
        return NotFound(f"no resource at {request.path}")
    if code == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    if code == 413:
        return PayloadTooLarge("the request body exceeds the configured limit")
    if code == 400:
        from nf.errors import BadRequest

        return BadRequest(e.description or "bad request")
    return NfError(e.description or "error", status=code, cause="SYSTEM_FAILURE",
                   title=e.name)


def create_app(
    settings: Settings,
    *,
    role: Role,
    clock: Clock | None = None,
    db: Db | None = None,
    parts: Sequence[Part] | None = None,
) -> Quart:
    """Build the app. ``db`` and ``clock`` are injected by tests; ``parts`` defaults to
    every slice of the NF (``nf.wiring.build_parts``)."""
    clock = clock or SystemClock()
    client: AsyncMongoClient[Doc] | None = None
    if db is None:
        client = make_client(settings)
        db = client[settings.mongodb_database]
    rt = Runtime(settings=settings, clock=clock, db=db)
    if parts is None:
        from nf.wiring import build_parts

        parts = build_parts(rt)

    app = Quart(f"nf-{role}")
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions["nf.runtime"] = rt
    app.extensions["nf.parts"] = parts
    metrics = rt.metrics
    limit = settings.server.max_inflight_requests
    state = {"inflight": 0, "ready": False}
    tasks: list[asyncio.Task[None]] = []

    for part in parts:
        for bp in part.blueprints(role):
            app.register_blueprint(bp)

    if role == "oam":
        from nf.oam.health import health_blueprint

        app.register_blueprint(health_blueprint(rt, lambda: bool(state["ready"])))

    @app.before_request
    async def _admit() -> Response | None:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        logs.clear()
        logs.bind(request_id=rid)
        request.environ_start = time.perf_counter()  # type: ignore[attr-defined]
        if state["inflight"] >= limit:
            metrics.rejected.labels("NF_CONGESTION").inc()
            return problem_response(
                Congestion(f"more than {limit} requests in flight; retry later"),
                request.path)
        state["inflight"] += 1
        request.admitted = True  # type: ignore[attr-defined]
        metrics.inflight.inc()
        return None

    @app.after_request
    async def _account(resp: Response) -> Response:
        if getattr(request, "admitted", False):
            state["inflight"] -= 1
            request.admitted = False  # type: ignore[attr-defined]
            metrics.inflight.dec()
        op = request.url_rule.endpoint if request.url_rule else "unmatched"
        start = getattr(request, "environ_start", None)
        metrics.requests.labels(op, str(resp.status_code)).inc()
        if start is not None:
            metrics.latency.labels(op).observe(time.perf_counter() - start)
        rid = logs._bound.get() or {}
        if "request_id" in rid:
            resp.headers["x-request-id"] = str(rid["request_id"])
        return resp

    @app.errorhandler(NfError)
    async def _nf_error(e: NfError) -> Response:
        if e.status >= 500:
            logs.log(log, logging.WARNING, "request failed", status=e.status, cause=e.cause,
                     detail=e.detail, path=request.path)
        return problem_response(e, request.path)

    @app.errorhandler(HTTPException)
    async def _http(e: HTTPException) -> Response:
        return problem_response(_http_error(e), request.path)

    @app.errorhandler(Exception)
    async def _unexpected(e: Exception) -> Response:
        log.exception("unexpected error", extra={"fields": {"path": request.path}})
        return problem_response(
            NfError("an unexpected error occurred; it has been logged"), request.path)

    @app.before_serving
    async def _start() -> None:
        for part in parts:
            await part.ensure_indexes()
        state["ready"] = True
        for part in parts:
            for worker in part.workers():
                tasks.append(asyncio.create_task(_guard(worker, part.name)))

    @app.after_serving
    async def _stop() -> None:
        state["ready"] = False
        rt.stopping.set()
        if tasks:
            _done, pending = await asyncio.wait(
                tasks, timeout=settings.server.shutdown_grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if client is not None:
            await client.close()

    async def _guard(worker: object, name: str) -> None:
        # A worker that dies is logged and restarted after a pause, unless stopping.
        while not rt.stopping.is_set():
            try:
                await worker()  # type: ignore[operator]
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background worker failed; restarting",
                              extra={"fields": {"part": name}})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rt.stopping.wait(), timeout=1.0)

    app.extensions["nf.ping"] = lambda: ping(rt.db)
    return app
