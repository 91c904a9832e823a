"""The app assembly. ``build_app`` makes one Quart app for one port (role) from the parts
it is given (``nf.wiring.create_app`` gives it the NF's).

The SBI role serves the 3GPP services (CHF, PCF) to SMFs; the OAM role serves health,
readiness, metrics and the provisioning API. Both roles run the background workers
(outbox senders, EDR writer, sweepers), which coordinate through the database.

Every error leaves as one ProblemDetails rendering (``nf.sbi.problem``): the NF's own
errors, Quart's and Werkzeug's automatic ones (404, 405, 413, 408) and anything unexpected
(500, logged, never a stack trace in the answer). Admission control, request ids and
request metrics live in the outermost ASGI layer (``nf.sbi.guard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, cast

import pymongo
from pymongo import AsyncMongoClient
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from nf import logs
from nf.clock import Clock, SystemClock, until_woken
from nf.config import Settings
from nf.errors import (
    BadRequest,
    HttpVersionNotSupported,
    MethodNotAllowed,
    NfError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
)
from nf.metrics import OPERATION_KEY
from nf.runtime import NoKeys, Part, Role, Runtime, Starts, Worker
from nf.sbi.direct import Authenticator, DirectRoutes, ServesDirect
from nf.sbi.guard import AsgiApp, Guard
from nf.sbi.problem import problem_response
from nf.security.apikeys import KeyRing
from nf.store.mongo import Db, Doc, make_client, wants_warm_up, warm_up
from nf.store.opwatch import OpWatch

log = logging.getLogger("nf.app")

# What an HTTP/1.x client on the SBI port is told (``server.sbi_http1`` off).
SBI_NEEDS_HTTP2 = (
    "this port is the 5G service-based interface and speaks HTTP/2 only (TS 29.500): "
    "connect with HTTP/2 prior knowledge in cleartext (h2c; e.g. curl --http2-prior-knowledge"
    ", or httpx.Client(http1=False, http2=True)) or with ALPN h2 over TLS; the operator "
    "can also accept HTTP/1.1 here with the setting server.sbi_http1: true")

# How often each process adds its CPU time to ``nf_process_cpu_seconds_total``.
CPU_SAMPLE_S = 2.0
# How often a long start says what it is waiting for.
PROGRESS_EVERY_S = 10.0

# Never refused for congestion: probes must answer while the NF is busy.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _http_error(e: HTTPException) -> NfError:
    code = e.code or 500
    if code == 404:
        return NotFound(f"no resource at {request.path}")
    if code == 405:
        allow = tuple(sorted(getattr(e, "valid_methods", None) or ()))
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}",
                                allow=allow)
    if code == 413:
        return PayloadTooLarge("the request body exceeds the configured limit")
    if code == 408:
        return RequestTimeout("the request body was not received in time")
    if code == 400:
        return BadRequest("the request is malformed")
    if code >= 500:
        return NfError("an unexpected error occurred; it has been logged")
    return NfError(e.name, status=code, cause="INVALID_MSG_FORMAT", title=e.name)


class _Lifecycle:
    """Start-up and shut-down of one app: indexes, background workers, database client."""

    def __init__(self, rt: Runtime, parts: Sequence[Part], role: Role,
                 client: AsyncMongoClient[Doc] | None, build_indexes: bool = True) -> None:
        self.rt = rt
        self.parts = parts
        self.role = role
        self.client = client
        self.build_indexes = build_indexes
        self._stop: asyncio.Future[bool] | None = None

    async def start(self) -> None:
        # Index checks and the warm-up may take long on a large database just restarted:
        # they get ``mongodb_startup_timeout_s`` instead of the per-operation timeout, and a
        # progress line every 10 s (on the injected clock) says what is being waited for.
        settings, clock = self.rt.settings, self.rt.clock
        step = ["index checks"]
        t0 = clock.monotonic()
        started = asyncio.Event()

        async def progress() -> None:
            while True:
                await until_woken(started, clock=clock, timeout_s=PROGRESS_EVERY_S)
                if started.is_set():
                    return
                logs.log(log, logging.WARNING, "starting: waiting for the database",
                         role=self.role, step=step[0], waited_s=round(clock.monotonic() - t0),
                         limit_s=settings.mongodb_startup_timeout_s)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(progress())
            try:
                took = await self._start_steps(step)
            finally:
                started.set()
        if took is not None:
            logs.log(log, logging.INFO if sum(took.values()) < 1000 else logging.WARNING,
                     "database warmed up", role=self.role, ms=took,
                     start_s=round(clock.monotonic() - t0, 2))
        self.rt.ready = True

    async def _start_steps(self, step: list[str]) -> dict[str, float] | None:
        settings = self.rt.settings
        with pymongo.timeout(settings.mongodb_startup_timeout_s):
            if self.build_indexes:
                for part in self.parts:
                    step[0] = f"index checks ({part.name})"
                    await part.ensure_indexes()
            took: dict[str, float] | None = None
            if self.build_indexes and await wants_warm_up(self.rt.db, settings.mongodb_warm_up):
                step[0] = "warm-up"
                took = await warm_up(self.rt.db)
            # Start work of every process (e.g. the OAuth2 verification keys).
            for part in self.parts:
                if isinstance(part, Starts):
                    step[0] = f"start ({part.name})"
                    await part.start()
        return took

    async def serve(self) -> AsyncGenerator[None, None]:
        """The background workers, for as long as the app serves: one task each in a
        ``TaskGroup`` owned by the app's lifespan (entered after ``start``, left after
        ``stop``). Each is restarted after a pause if it fails; all are told to finish
        through ``Runtime.stopping``."""
        workers = [(p.name, w) for p in self.parts for w in p.workers()]
        workers.append(("metrics", self._sample_cpu))
        async with asyncio.TaskGroup() as tg:
            if not self.rt.stopping.is_set():
                self.tasks = [tg.create_task(self._guard(name, worker))
                              for name, worker in workers]
            logs.log(log, logging.INFO, "started", role=self.role, pid=os.getpid(),
                     parts=[p.name for p in self.parts], workers=len(self.tasks))
            yield
            await self.stop()

    async def _guard(self, name: str, worker: Worker) -> None:
        while not self.rt.stopping.is_set():
            try:
                await worker()
                return
            except Exception:
                log.exception("background worker failed; restarting",
                              extra={"fields": {"part": name}})
                await self.rt.pause(1.0)

    async def _sample_cpu(self) -> None:
        """Keep the CPU counter of this process current (read at every scrape)."""
        while not self.rt.stopping.is_set():
            self.rt.metrics.sample_cpu()
            await self.rt.pause(CPU_SAMPLE_S)
        self.rt.metrics.sample_cpu()

    async def stop(self, timeout_s: float | None = None) -> bool:
        """Tell the workers to finish, wait for them (``timeout_s``, default
        ``shutdown_grace_s``), close the database client; True if the workers finished in
        time. Runs once: a second call (the server's lifespan shutdown after the process's
        own drain, ``nf.sbi.drain``) waits for the first."""
        if self._stop is None:
            self._stop = asyncio.ensure_future(self._stop_once(timeout_s))
        return await asyncio.shield(self._stop)

    async def _stop_once(self, timeout_s: float | None) -> bool:
        self.rt.ready = False
        self.rt.stopping.set()
        grace = self.rt.settings.server.shutdown_grace_s if timeout_s is None else timeout_s
        flushed = True
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=grace)
            flushed = not late
            for t in late:
                t.cancel()
            for t in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        if self.client is not None:
            await self.client.close()
        _metrics_process_dead()
        logs.log(log, logging.INFO, "stopped", role=self.role, pid=os.getpid(),
                 workers_flushed=flushed, database_closed=self.client is not None)
        return flushed


def _metrics_process_dead() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def build_app(
    settings: Settings,
    *,
    role: Role,
    parts: Callable[[Runtime], Sequence[Part]],
    clock: Clock | None = None,
    db: Db | None = None,
    build_indexes: bool = True,
) -> Quart:
    """Build the app of ``parts``, a function of the app's ``Runtime``. ``db`` and ``clock``
    are injected by tests. ``build_indexes=False``: the start leaves index checks and the
    database warm-up to another process of the same NF (``nf serve``'s SBI workers leave
    them to its OAM process, whose ``/readyz`` says when they are done)."""
    clock = clock or SystemClock()
    client: AsyncMongoClient[Doc] | None = None
    watch = OpWatch(settings.mongodb_slow_op_ms) if settings.mongodb_op_watch else None
    if db is None:
        client = make_client(settings, watch)
        db = client[settings.mongodb_database]
    # The care API's keys are resolved here, once, for the OAM port's blueprints that check
    # them (key files and environment variables are read now).
    keys = KeyRing.from_settings(settings.api_keys) if role == "oam" else NoKeys()
    rt = Runtime(settings=settings, clock=clock, db=db, role=role, api_keys=keys)
    if watch is not None:
        watch.observe = rt.metrics.db_operation
        watch.failure = rt.metrics.db_failure
    built = list(parts(rt))
    app = Quart(f"nf-{role}")
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.config["BODY_TIMEOUT"] = settings.server.body_timeout_s
    life = _Lifecycle(rt, built, role, client, build_indexes)
    inner: AsgiApp = app.asgi_app  # type: ignore[assignment]
    routes = [r for p in built if isinstance(p, ServesDirect) for r in p.direct_routes(role)]
    if routes and settings.server.direct_routes:
        # The hot SBI operations are answered before the framework (``nf.sbi.direct``).
        inner = DirectRoutes(inner, routes,
                             authenticators=[p for p in built
                                             if isinstance(p, Authenticator)],
                             max_body_bytes=settings.server.max_body_bytes,
                             body_timeout_s=settings.server.body_timeout_s)
    guard = Guard(inner, limit=settings.server.max_inflight_requests,
                  metrics=rt.metrics, exempt_paths=PROBE_PATHS,
                  body_timeout_s=settings.server.body_timeout_s,
                  active=settings.server.max_active_requests)
    app.asgi_app = guard  # type: ignore[method-assign,assignment]
    app.extensions["nf.runtime"] = rt
    app.extensions["nf.parts"] = built
    app.extensions["nf.guard"] = guard

    for part in built:
        for bp in part.blueprints(role):
            app.register_blueprint(bp)

    @app.before_request
    async def _operation() -> None:
        if request.url_rule is not None and request.url_rule.endpoint:
            cast(dict[str, Any], request.scope)[OPERATION_KEY] = request.url_rule.endpoint

    if role == "sbi" and not settings.server.sbi_http1:
        @app.before_request
        async def _http2_only() -> None:
            if request.http_version.startswith("1"):
                raise HttpVersionNotSupported(SBI_NEEDS_HTTP2)

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

    app.before_serving(life.start)
    app.while_serving(life.serve)

    app.extensions["nf.lifecycle"] = life
    return app

