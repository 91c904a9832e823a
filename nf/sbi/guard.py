"""The outermost ASGI layer of every app: admission, request ids, metrics, last resort.

It wraps Quart's ASGI callable so that the accounting below holds whatever happens inside
(handler exceptions, client disconnects that cancel the handler, errors in error handlers):

- **Admission.** At most ``limit`` requests are handled at once; past that the request is
  answered at once with 503 ``NF_CONGESTION`` and ``Retry-After`` without touching the app.
  The counter is released in a ``finally``, so it cannot leak. Of those admitted, at most
  ``active`` are worked on at once; the rest wait their turn in arrival order.
- **Request id.** ``x-request-id`` from the peer (if a plain short token) or a new one is
  bound to every log line of the request and echoed on the response.
- **Metrics.** Requests by service operation and status, latency, requests in flight.
- **Whole requests.** The end of a response is held back until the request body has been
  received (at most ``body_timeout_s``): a server must not close a stream its peer is still
  sending on (Hypercorn drops the whole HTTP/2 connection when DATA arrives for a stream it
  has closed, e.g. after an early 413).
- **Last resort.** If the app itself raises (it should not: ``nf.sbi.app`` renders every
  error), a 500 ProblemDetails is sent if nothing was sent yet. No stack trace leaves.

It never parses bodies and never looks at charging or policy data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from nf import logs
from nf.errors import Congestion, NfError
from nf.metrics import OPERATION_KEY, Metrics
from nf.sbi.problem import problem_answer
from nf.sbi.responses import send_answer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The operation label of a request that no route matched.
UNMATCHED = "unmatched"

log = logging.getLogger("nf.sbi")


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k.lower() == name:
            return bytes(v).decode("latin-1")
    return None


async def send_problem(send: Send, err: NfError, instance: str, request_id: str) -> None:
    """Answer with a ProblemDetails straight at the ASGI level (no app involved)."""
    answer = problem_answer(err, instance)
    answer.headers["x-request-id"] = request_id
    await send_answer(send, answer)


class _Exchange:
    """One request's view of the ASGI channel: the response status it sent, and the end of
    its response held back until its body has been received. Plain methods, no closure,
    event or timer per request: the wait exists only when a response would end first."""

    __slots__ = (
        "_body_done",
        "_body_event",
        "_receive",
        "_rid",
        "_send",
        "_timeout_s",
        "status",
    )

    def __init__(self, receive: Receive, send: Send, rid: str, timeout_s: float) -> None:
        self._receive = receive
        self._send = send
        self._rid = rid.encode()
        self._timeout_s = timeout_s
        self.status = 0
        self._body_done = False
        self._body_event: asyncio.Event | None = None

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self._body_done = True
            if self._body_event is not None:
                self._body_event.set()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
            message = {**message, "headers": [
                *message.get("headers", ()), (b"x-request-id", self._rid)]}
        elif (kind == "http.response.body" and not self._body_done
              and not message.get("more_body")):
            self._body_event = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout_s):
                    await self._body_event.wait()
        await self._send(message)


class Guard:
    """ASGI middleware; one per app (per port and worker process)."""

    def __init__(self, app: AsgiApp, *, limit: int, metrics: Metrics,
                 exempt_paths: frozenset[str] = frozenset(), retry_after_s: int = 1,
                 body_timeout_s: float = 10.0, active: int = 0) -> None:
        self.app = app
        self.limit = limit
        # At most ``active`` requests are worked on at once; the others admitted wait their
        # turn (first come, first served) without costing the event loop anything. Fewer
        # requests interleaved keeps each turn of the loop short, so background work that
        # must be quick (a throttle's notification) does not queue behind every request in
        # the process. 0: no such limit.
        self._turns = asyncio.Semaphore(active) if active > 0 else None
        self.metrics = metrics
        self.exempt_paths = exempt_paths
        self.retry_after_s = retry_after_s
        self.body_timeout_s = body_timeout_s
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = logs.request_id_from(_header(scope, b"x-request-id"))
        token = logs.start_request(rid)
        try:
            await self._http(scope, receive, send, rid)
        finally:
            logs.end_request(token)

    async def _discard_body(self, receive: Receive) -> None:
        """Read (and drop) what is left of a refused request's body, within the deadline."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        path = str(scope.get("path") or "/")
        counted = path not in self.exempt_paths
        m = self.metrics
        if counted and self.inflight >= self.limit:
            m.rejected.labels("NF_CONGESTION").inc()
            await self._discard_body(receive)
            await send_problem(send, Congestion(
                f"more than {self.limit} requests in flight; retry later",
                retry_after_s=self.retry_after_s), path, rid)
            return
        if counted:
            self.inflight += 1
            m.inflight.inc()
        scope[OPERATION_KEY] = UNMATCHED
        start = time.perf_counter()
        ex = _Exchange(receive, send, rid, self.body_timeout_s)
        turns = self._turns if counted else None
        try:
            if turns is None:
                await self.app(scope, ex.receive, ex.send)
            else:
                async with turns:
                    await self.app(scope, ex.receive, ex.send)
        except Exception:
            log.exception("request failed outside the error handlers",
                          extra={"fields": {"path": path}})
            if ex.status == 0:
                ex.status = 500
                try:
                    await send_problem(send, NfError(
                        "an unexpected error occurred; it has been logged"), path, rid)
                except Exception:  # the peer has gone: nothing more to tell it
                    log.debug("could not send the 500 answer")
        finally:
            if counted:
                self.inflight -= 1
                m.inflight.dec()
            m.finished(str(scope.get(OPERATION_KEY, UNMATCHED)), ex.status,
                       time.perf_counter() - start)
