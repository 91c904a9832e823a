"""The SBI's hot operations answered straight at the ASGI level, without the framework.

Every charging and policy request of an SMF is a ``POST`` of a JSON body to one of a few
paths (a charging data create, update or release; an SM policy create, update or delete).
For those, the framework's per-request work (a request object, its contexts, URL routing,
hooks, a response object) costs more CPU than the HTTP/2 server itself. ``DirectRoutes``
sits in front of the Quart app and answers exactly those requests itself: it reads the
body within the same limits (``server.max_body_bytes``, ``server.body_timeout_s``), runs
the same authentication (``Authenticator``), calls the same operation (each slice's
``*_routes``, which its Quart blueprint registers too), and renders the same answer or
ProblemDetails. Anything else (other methods and paths, HTTP/1.1) goes to the Quart app,
untouched.

The operation's name (the metrics label) is the blueprint endpoint's, so both paths count
as one operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from quart import Blueprint, Response, request

from nf import logs
from nf.errors import NfError, PayloadTooLarge, RequestTimeout
from nf.metrics import OPERATION_KEY
from nf.sbi.body import BodySource, QuartBody
from nf.sbi.guard import AsgiApp, Receive, Scope, Send
from nf.sbi.problem import problem_answer
from nf.sbi.responses import Answer, send_answer, to_response

log = logging.getLogger("nf.sbi")


class SbiRequest(BodySource, Protocol):
    """What an operation needs of its request, whichever path it came by."""

    @property
    def host_url(self) -> str: ...


Operation = Callable[[SbiRequest, dict[str, str]], Awaitable[Answer]]


@runtime_checkable
class ServesDirect(Protocol):
    """A part whose operations the direct path serves (besides its blueprint)."""

    def direct_routes(self, role: str) -> list[Route]: ...


@runtime_checkable
class Authenticator(Protocol):
    """Decides who calls (or refuses with an ``NfError``) before any operation runs;
    ``endpoint``: the operation's name, ``authorization``: the header, if any."""

    def authenticate(self, path: str, endpoint: str | None,
                     authorization: str | None) -> None: ...


@dataclass(frozen=True)
class Route:
    """``POST`` to a path matching ``pattern`` (named groups: the path's parameters);
    ``rule``: the same path in the framework's form, relative to the blueprint's prefix."""

    pattern: re.Pattern[str]
    rule: str
    endpoint: str
    operation: Operation


def route(prefix: str, rule: str, endpoint: str, operation: Operation) -> Route:
    """A route for ``prefix + rule``, ``rule`` like ``/a/<ref>/update`` (a parameter is one
    path segment, never empty); ``endpoint``: ``<blueprint>.<name>``."""
    rx = "".join(f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("<") else re.escape(part)
                 for part in re.split(r"(<[a-z_]+>)", prefix + rule))
    return Route(re.compile(rx + r"\Z"), rule, endpoint, operation)


def _mimetype(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class _AsgiRequest:
    """A request as the ASGI server gave it: the headers, and the body read on demand."""

    __slots__ = (
        "_done",
        "_max_bytes",
        "_receive",
        "_timeout_s",
        "authorization",
        "content_length",
        "host_url",
        "mimetype",
    )

    def __init__(self, scope: Scope, receive: Receive, max_bytes: int,
                 timeout_s: float) -> None:
        self._receive = receive
        self._done = False  # the body's last message was received: nothing more comes
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        length: int | None = None
        ctype = host = auth = None
        for k, v in scope.get("headers") or ():
            name = bytes(k).lower()
            if name == b"content-type":
                ctype = bytes(v).decode("latin-1")
            elif name == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    length = None
            elif name == b"host" and host is None:
                host = bytes(v).decode("latin-1")
            elif name == b"authorization":
                auth = bytes(v).decode("latin-1")
        self.content_length = length
        self.mimetype = _mimetype(ctype)
        self.authorization = auth
        if host is None:
            server = scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        self.host_url = f"{scope.get('scheme') or 'http'}://{host}/"

    async def discard(self) -> None:
        """Read (and drop) what is left of the body, within the deadline: a refused
        request (also one refused while its body was being read) is answered only once
        its peer has finished sending."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout_s):
                while True:
                    message = await self._receive()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return

    async def body(self) -> bytes:
        if self.content_length is not None and self.content_length > self._max_bytes:
            raise PayloadTooLarge("the request body exceeds the configured limit")
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._timeout_s):
                while True:
                    message = await self._receive()
                    if message["type"] != "http.request":
                        self._done = True  # the peer went away: nothing more comes
                        raise RequestTimeout("the request body was not received in time")
                    if not message.get("more_body"):
                        self._done = True
                    chunk = message.get("body") or b""
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise PayloadTooLarge("the request body exceeds the configured limit")
                    parts.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            raise RequestTimeout("the request body was not received in time") from None
        return parts[0] if len(parts) == 1 else b"".join(parts)


class QuartRequest(QuartBody):
    """The framework's request as an ``SbiRequest`` (the blueprints' path)."""

    __slots__ = ()

    @property
    def host_url(self) -> str:
        return self._r.host_url


def framework_view(op: Operation) -> Callable[..., Awaitable[Response]]:
    """A Quart view running ``op`` (the same operation as the direct path)."""

    async def view(**params: str) -> Response:
        return to_response(await op(QuartRequest(request), params))

    return view


def blueprint_of(bp: Blueprint, routes: Sequence[Route]) -> Blueprint:
    """Register ``routes`` on ``bp`` as ``POST`` views (the framework's path to the same
    operations; the endpoint's name is the part after the blueprint's)."""
    for r in routes:
        bp.add_url_rule(r.rule, r.endpoint.split(".", 1)[1], framework_view(r.operation),
                        methods=["POST"])
    return bp


class DirectRoutes:
    """ASGI middleware in front of the Quart app: answers ``routes`` itself."""

    def __init__(self, app: AsgiApp, routes: Sequence[Route], *,
                 authenticators: Sequence[Authenticator], max_body_bytes: int,
                 body_timeout_s: float) -> None:
        self.app = app
        self._routes = tuple(routes)
        self._auth = tuple(authenticators)
        self._max_bytes = max_body_bytes
        self._timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" \
                or str(scope.get("http_version", "")).startswith("1"):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path") or "")
        for r in self._routes:
            m = r.pattern.match(path)
            if m is not None:
                break
        else:
            await self.app(scope, receive, send)
            return
        scope[OPERATION_KEY] = r.endpoint
        req = _AsgiRequest(scope, receive, self._max_bytes, self._timeout_s)
        try:
            for a in self._auth:
                a.authenticate(path, r.endpoint, req.authorization)
            answer = await r.operation(req, m.groupdict())
        except NfError as e:
            if e.status >= 500:
                logs.log(log, logging.WARNING, "request failed", status=e.status,
                         cause=e.cause, detail=e.detail, path=path)
            answer = problem_answer(e, path)
        except Exception:
            log.exception("unexpected error", extra={"fields": {"path": path}})
            answer = problem_answer(
                NfError("an unexpected error occurred; it has been logged"), path)
        await req.discard()  # refused before its body was read (or a body with no use)
        await send_answer(send, answer)
