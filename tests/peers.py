"""Real HTTP/2 peers for tests: an SMF (or an external PCF) that receives the NF's notifications.

``NotificationReceiver`` is a tiny ASGI app served by Hypercorn on an ephemeral
``127.0.0.1`` port, in its own thread with its own event loop, so the same object works in
sync and async tests. It speaks HTTP/2 cleartext with prior knowledge (what the NF's httpx
client uses, ``http2=True, http1=False``) and HTTP/1.1. It records every request and answers
each one as the test configured::

    with NotificationReceiver() as smf:                    # or: async with ...
        smf.respond("/gone/", Reply(404))                  # a session the SMF has forgotten
        smf.respond("/flaky", Reply(500), times=2)         # then the default (204)
        smf.respond("/slow", Reply(204, delay_s=2.0))
        notify_uri = smf.url("/notify/ref-1")
        ...
        got = await smf.wait_for(lambda r: r.path == "/notify/ref-1", timeout_s=5)
        assert got.json["notificationType"] == "REAUTHORIZATION"

It never raises inside the server: a rule that raises answers 500 and is recorded in
``errors``. Records are bounded (``max_records``); past the bound the oldest are dropped and
counted in ``dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

Predicate = Callable[["Received"], bool]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

@dataclass(frozen=True)
class Reply:
    """What the peer answers: ``status``, a JSON ``body`` (``None``: empty), extra headers,
    and ``delay_s`` to wait before answering (the request is recorded before the wait)."""

    status: int = 204
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


@dataclass(frozen=True)
class Received:
    """One request as the peer saw it."""

    seq: int
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]  # lower-case names, in arrival order
    body: bytes
    http_version: str  # "2" for HTTP/2, "1.1" for HTTP/1.1
    monotonic: float  # time.monotonic() when the whole body had arrived
    wall: datetime  # UTC wall-clock time of the same moment
    status: int  # what the peer answered (or is about to, after any delay)

    @property
    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` if it is not JSON."""
        return json.loads(self.body)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The last value of header ``name`` (case-insensitive)."""
        name = name.lower()
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return default


Responder = Reply | Callable[[Received], Reply]


@dataclass
class _Rule:
    prefix: str
    responder: Responder
    method: str | None
    remaining: int | None


class NotificationReceiver:
    """A real HTTP/2 server that records requests and answers per path prefix.

    Rules added later win over earlier ones; a rule with ``times`` applies that many times
    and then falls away. Without a matching rule the ``default`` reply is sent.
    """

    def __init__(
        self,
        *,
        default: Reply = Reply(204),
        max_records: int = 10_000,
        max_body_bytes: int = 4 * 1024 * 1024,
        graceful_timeout_s: float = 1.0,
    ) -> None:
        self._default = default
        self._max_body_bytes = max_body_bytes
        self._graceful_timeout_s = graceful_timeout_s
        self._records: deque[Received] = deque(maxlen=max_records)
        self._rules: list[_Rule] = []
        self._seq = 0
        self.dropped = 0
        self.errors: list[BaseException] = []
        self._cond = threading.Condition()
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._port: int | None = None

    # -- configuration --------------------------------------------------------------------

    def respond(
        self,
        prefix: str,
        reply: Responder,
        *,
        method: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer requests whose path starts with ``prefix`` (and ``method``, if given)."""
        with self._cond:
            self._rules.append(_Rule(prefix, reply, method.upper() if method else None, times))

    def reset_rules(self) -> None:
        with self._cond:
            self._rules.clear()

    # -- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the receiver is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: prefix of a notifyUri / notificationUri."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- what arrived ---------------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        """A snapshot of everything recorded, oldest first."""
        with self._cond:
            return list(self._records)

    def matching(self, predicate: Predicate | None = None) -> list[Received]:
        return [r for r in self.requests if predicate is None or predicate(r)]

    def clear(self) -> None:
        with self._cond:
            self._records.clear()

    def wait_for_sync(
        self, predicate: Predicate | None = None, timeout_s: float = 5.0, *, count: int = 1
    ) -> list[Received]:
        """Block until ``count`` recorded requests satisfy ``predicate``; return them.

        Requests recorded before the call count. Raises ``TimeoutError`` listing what
        did arrive.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = [r for r in self._records if predicate is None or predicate(r)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(count, len(found), timeout_s))
                self._cond.wait(remaining)

    async def wait_for(
        self, predicate: Predicate | None = None, timeout_s: float = 5.0
    ) -> Received:
        """Wait (without blocking the event loop) for one request satisfying ``predicate``."""
        return (await self.wait_for_all(predicate, timeout_s, count=1))[0]

    async def wait_for_all(
        self, predicate: Predicate | None = None, timeout_s: float = 5.0, *, count: int = 1
    ) -> list[Received]:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waiter = (loop, event)
        with self._cond:
            self._async_waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    event.clear()
                    found = self.matching(predicate)
                    if len(found) >= count:
                        return found[:count]
                    await event.wait()
        except TimeoutError:
            found = self.matching(predicate)
            raise TimeoutError(self._timeout_message(count, len(found), timeout_s)) from None
        finally:
            with self._cond:
                self._async_waiters.discard(waiter)

    def _timeout_message(self, count: int, found: int, timeout_s: float) -> str:
        seen = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
        return (
            f"{found}/{count} matching requests within {timeout_s}s; "
            f"last ones received: {seen or 'none'}"
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> NotificationReceiver:
        if self._thread is not None:
            raise RuntimeError("already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns (and closes) the socket
        config.accesslog = None
        config.loglevel = "WARNING"
        config.graceful_timeout = self._graceful_timeout_s
        config.include_server_header = False
        self._thread = threading.Thread(
            target=self._run, args=(config,), name=f"peer-{self._port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10.0) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"peer did not start: {self._failure!r}")
        return self

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own
                loop.call_soon_threadsafe(stop.set)
        thread.join(self._graceful_timeout_s + 10.0)
        self._thread = None
        if thread.is_alive():
            raise RuntimeError("peer did not stop")

    def __enter__(self) -> NotificationReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> NotificationReceiver:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _run(self, config: Config) -> None:
        try:
            asyncio.run(self._serve(config))
        except BaseException as exc:  # reported to start()/the test, never lost
            self._failure = exc
            self.errors.append(exc)
            self._ready.set()

    async def _serve(self, config: Config) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await serve(self._app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]

    # -- the ASGI app ---------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                self._ready.set()
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        too_big = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                too_big = True
            elif chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        wall = datetime.now(UTC)
        arrived = time.monotonic()
        headers = tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
        )
        with self._cond:
            self._seq += 1
            seq = self._seq
        draft = Received(
            seq=seq,
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=b"".join(chunks),
            http_version=scope.get("http_version", "1.1"),
            monotonic=arrived,
            wall=wall,
            status=0,
        )
        reply = Reply(413) if too_big else self._choose(draft)
        record = dataclasses.replace(draft, status=reply.status)
        self._record(record)
        if reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        out_headers = [(b"content-length", str(len(body)).encode())]
        if body:
            out_headers.append((b"content-type", reply.content_type.encode()))
        out_headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": out_headers})
        await send({"type": "http.response.body", "body": body})

    def _choose(self, request: Received) -> Reply:
        with self._cond:
            rule = next(
                (
                    r for r in reversed(self._rules)
                    if request.path.startswith(r.prefix)
                    and (r.method is None or r.method == request.method)
                    and (r.remaining is None or r.remaining > 0)
                ),
                None,
            )
            if rule is None:
                return self._default
            if rule.remaining is not None:
                rule.remaining -= 1
            responder = rule.responder
        if isinstance(responder, Reply):
            return responder
        try:
            return responder(request)
        except Exception as exc:  # a broken rule must not kill the peer
            self.errors.append(exc)
            return Reply(500, {"title": f"test rule raised {exc!r}"})

    def _record(self, record: Received) -> None:
        with self._cond:
            if self._records.maxlen is not None and len(self._records) == self._records.maxlen:
                self.dropped += 1
            self._records.append(record)
            self._cond.notify_all()
            waiters = list(self._async_waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)


@contextlib.contextmanager
def receivers(n: int, **kwargs: Any) -> Iterator[Sequence[NotificationReceiver]]:
    """``n`` independent receivers (e.g. several SMFs), all stopped on exit."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(NotificationReceiver(**kwargs)) for _ in range(n)]
