"""The asyncio side of Diameter connections: the listener, one task group per connection.

Its one job is I/O around ``nf.diameter.base``: frame messages off the stream with bounded
sizes, feed them to the connection's core, send what it says, run each request's
application handler (by Application-Id) concurrently up to a bound, and let the NF send
requests of its own to a connected peer and await the answer (``Peers.request``). A
message that cannot be decoded is answered per RFC 6733 (5014, 5015, 3008) and the
connection goes on: the other sessions on it are never dropped for one bad message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from nf import logs
from nf.clock import Clock
from nf.diameter import base, codec
from nf.diameter.base import AnswerCache, Identity, PeerInfo, State
from nf.diameter.codec import Message
from nf.diameter.peers import Peers
from nf.diameter.port import AppHandler, PeerUnavailable
from nf.metrics import Metrics
from nf.settings.diameter import DiameterSettings

log = logging.getLogger("nf.diameter")

__all__ = ["AppHandler", "Listener", "PeerInfo", "PeerUnavailable", "Peers"]


class _Conn:
    """One accepted connection."""

    def __init__(self, listener: Listener, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.listener = listener
        self.reader = reader
        self.writer = writer
        clock = listener.clock
        self.core = base.Connection(listener.me, listener.allowed, listener.cache,
                                    watchdog_s=listener.cfg.watchdog_s,
                                    now=clock.monotonic(), first_id=listener.seed())
        self.pending: dict[int, asyncio.Future[Message]] = {}
        self.inflight: dict[tuple[str, int], asyncio.Future[Message]] = {}
        self.busy = 0
        self.registered = False  # in ``Peers`` (and the connected-peers gauge)
        self.closed = asyncio.Event()
        self.peer_addr = str(writer.get_extra_info("peername"))
        # Answers finished in this turn of the loop, written at its end (bounded by
        # ``max_inflight_per_connection``).
        self._out: list[bytes] = []

    # -- sending --------------------------------------------------------------------------

    def send(self, msgs: Sequence[Message]) -> None:
        for m in msgs:
            self.send_encoded(m, codec.encode(m))

    def send_encoded(self, msg: Message, data: bytes, soon: bool = False) -> None:
        """Send ``msg``, already encoded as ``data`` (encoded once: the answer cache keeps
        the same bytes). ``soon``: with the other answers finished in this turn of the
        event loop, in one write (one system call for many, at load); else now, after
        those waiting (the order of sending is kept)."""
        if self.writer.is_closing():
            return
        if soon:
            self._out.append(data)
            if len(self._out) == 1:
                asyncio.get_running_loop().call_soon(self.flush)
        else:
            self.flush()
            self.writer.write(data)
        h = msg.header
        if self.listener.metrics is not None and not h.command_flags & codec.FLAG_REQUEST:
            self.listener.count_answer(h.application_id, h.command_code,
                                       codec.result_code(msg))

    def flush(self) -> None:  # the answers waiting to be sent together
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        if not self.writer.is_closing():
            self.writer.write(data)

    def close_soon(self) -> None:
        """Drop the connection (its peer reconnected: the new connection replaces it)."""
        self.closed.set()
        self.flush()
        self.writer.close()

    async def request(self, req: Message, timeout_s: float) -> Message:
        hbh, e2e = self.core.next_ids()
        req.header.hop_by_hop_identifier = hbh
        req.header.end_to_end_identifier = e2e
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.pending[hbh] = fut
        try:
            self.send([req])
            await self.writer.drain()
            async with asyncio.timeout(timeout_s):
                return await fut
        except (TimeoutError, ConnectionError) as e:
            raise PeerUnavailable(f"no answer from {self.host}: {e!r}") from None
        finally:
            self.pending.pop(hbh, None)

    @property
    def host(self) -> str:
        return self.core.peer.origin_host if self.core.peer else self.peer_addr

    # -- the connection's life ------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.listener.cfg
        try:
            async with asyncio.TaskGroup() as tg:
                watchdog = tg.create_task(self._watchdog())
                try:
                    async with asyncio.timeout(cfg.cer_timeout_s):
                        if not await self._read_one(tg):
                            return
                    while not self.closed.is_set() and self.core.state is not State.CLOSED:
                        if not await self._read_one(tg):
                            break
                finally:
                    watchdog.cancel()
        except* (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            pass
        except* Exception:  # one connection's failure never stops the listener
            log.exception("diameter connection failed",
                          extra={"fields": {"peer": self.host, "address": self.peer_addr}})
        finally:
            self.closed.set()  # (a shutdown's disconnect waits for no DPA from a gone peer)
            if self.registered and self.listener.metrics is not None:
                self.listener.metrics.diameter_peers.dec()
            if self.core.peer is not None:
                self.listener.peers._remove(self.core.peer.origin_host, self)
            for f in self.pending.values():
                if not f.done():
                    f.set_exception(ConnectionError("connection closed"))
            self.flush()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _watchdog(self) -> None:
        clock = self.listener.clock
        while True:
            await clock.sleep(self.core.next_tick_in(clock.monotonic()))
            self._apply(self.core.tick(clock.monotonic()), None)
            await self.writer.drain()

    async def _read_one(self, tg: asyncio.TaskGroup) -> bool:
        """Read and act on one message; False when the connection is done."""
        cfg = self.listener.cfg
        try:
            head = await self.reader.readexactly(codec.HEADER_BYTES)
        except asyncio.IncompleteReadError:
            return False
        hdr = codec.read_header(head)
        me = self.listener.me
        if hdr.version != 1:
            self.send([codec.protocol_error(hdr, codec.UNSUPPORTED_VERSION, me.origin_host,
                                            me.origin_realm)])
            return False  # nothing after a foreign header can be framed
        if hdr.length < codec.HEADER_BYTES or hdr.length % 4:
            # A header that says the message is shorter than a header, or not a multiple
            # of 4 bytes: 5015. The rest of what it claims is skipped when it is sane.
            if hdr.length > codec.HEADER_BYTES:
                await self._skip(hdr.length - codec.HEADER_BYTES)
            self._reply_error(hdr, codec.INVALID_MESSAGE_LENGTH, "bad Message Length")
            return True
        if hdr.length > cfg.max_message_bytes:
            await self._skip(hdr.length - codec.HEADER_BYTES)
            self._reply_error(hdr, codec.INVALID_MESSAGE_LENGTH,
                              f"message longer than {cfg.max_message_bytes} bytes")
            return True
        data = head + await self.reader.readexactly(hdr.length - codec.HEADER_BYTES)
        try:
            msg = codec.decode(data)
        except codec.DecodeError as e:
            if hdr.is_request:
                fake = codec.protocol_error(hdr, None, me.origin_host, me.origin_realm)
                self.send([codec.answer(fake, e.result_code, me.origin_host, me.origin_realm,
                                        failed=[e.failed] if e.failed is not None else [],
                                        error_message=str(e))])
            return True
        try:
            step = self.core.received(msg, self.listener.clock.monotonic())
        except Exception:  # a bug must not drop the other sessions of the connection
            log.exception("diameter message not handled", extra={"fields": {
                "peer": self.host, "command": hdr.command}})
            if hdr.is_request:
                self.send([codec.answer(msg, codec.UNABLE_TO_COMPLY, me.origin_host,
                                        me.origin_realm)])
            return True
        self._apply(step, tg)
        await self.writer.drain()
        return not step.close

    async def _skip(self, n: int) -> None:
        while n > 0:
            chunk = await self.reader.read(min(n, 65_536))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", n)
            n -= len(chunk)

    def _reply_error(self, hdr: codec.Header, rc: int, why: str) -> None:
        if hdr.is_request:
            me = self.listener.me
            self.send([codec.protocol_error(hdr, rc, me.origin_host, me.origin_realm, why)])

    def _apply(self, step: base.Step, tg: asyncio.TaskGroup | None) -> None:
        self.send(step.send)
        if step.why:
            logs.log(log, logging.INFO, "diameter connection", peer=self.host,
                     address=self.peer_addr, event=step.why)
        if self.core.peer is not None and self.core.state is State.OPEN and \
                not self.registered:  # (once: a replaced connection never comes back)
            self.registered = True
            self.listener.peers._add(self.core.peer.origin_host, self)
            if self.listener.metrics is not None:
                self.listener.metrics.diameter_peers.inc()
            logs.log(log, logging.INFO, "diameter peer open", peer=self.core.peer.origin_host,
                     network=self.core.peer.network_id, address=self.peer_addr,
                     apps=sorted(self.core.peer.apps), state_id=self.core.peer.state_id)
            if tg is not None and self.listener.on_open is not None:
                tg.create_task(self.listener.on_open(self.core.peer))
        if step.answer is not None:
            fut = self.pending.get(codec.header_of(step.answer).hop_by_hop)
            if fut is not None and not fut.done():
                fut.set_result(step.answer)
        if step.dispatch is not None and tg is not None:
            self._dispatch(step.dispatch, step.key, tg)
        if step.close:
            self.closed.set()

    def _dispatch(self, req: Message, key: tuple[str, int] | None,
                  tg: asyncio.TaskGroup) -> None:
        hbh = codec.header_of(req).hop_by_hop
        first = self.inflight.get(key) if key is not None else None
        if first is not None:  # the same request again while the first is being handled
            tg.create_task(self._same_answer(first, hbh))
            return
        if self.busy >= self.listener.cfg.max_inflight_per_connection:
            me = self.listener.me
            self.send([codec.answer(req, codec.TOO_BUSY, me.origin_host, me.origin_realm)])
            return
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        if key is not None:
            self.inflight[key] = fut
        self.busy += 1
        tg.create_task(self._handle(req, key, fut))

    async def _same_answer(self, first: asyncio.Future[Message], hbh: int) -> None:
        with contextlib.suppress(Exception):
            ans = await asyncio.shield(first)
            self.send([codec.with_hop_by_hop(ans, hbh)])
            await self.writer.drain()

    async def _handle(self, req: Message, key: tuple[str, int] | None,
                      fut: asyncio.Future[Message]) -> None:
        me = self.listener.me
        t0 = time.perf_counter()
        try:
            ans = await self.listener.handle(req, self.core)
            data = codec.encode(ans)  # once: sent and kept for a retransmission
        except Exception as e:  # never a crash: the request gets 5012
            log.exception("diameter handler failed", extra={"fields": {"peer": self.host}})
            ans = codec.answer(req, codec.UNABLE_TO_COMPLY, me.origin_host, me.origin_realm,
                               error_message=type(e).__name__)
            data = codec.encode(ans)
            fut.set_result(ans)
        else:
            self.core.answered(req, data, key)
            fut.set_result(ans)
        finally:
            self.busy -= 1
            if key is not None:
                self.inflight.pop(key, None)
            if self.listener.metrics is not None:
                self.listener.observe_latency(req.header.application_id,
                                              time.perf_counter() - t0)
        self.send_encoded(ans, data, soon=True)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def disconnect(self) -> None:
        """Shutdown: DPR (REBOOTING), wait for the DPA a short while, close."""
        step = self.core.disconnect(base.DISCONNECT_REBOOTING)
        self.send(step.send)
        if step.send:
            with contextlib.suppress(Exception):
                await self.writer.drain()
                async with asyncio.timeout(self.listener.cfg.dpa_timeout_s):
                    await self.closed.wait()  # set by the DPA (or the peer's close)
        self.closed.set()
        self.flush()
        self.writer.close()


class Listener:
    """The Diameter server socket and its connections."""

    def __init__(self, cfg: DiameterSettings, allowed: base.Allowed,
                 handlers: Sequence[AppHandler], clock: Clock, *,
                 peers: Peers | None = None, metrics: Metrics | None = None,
                 on_open: Callable[[PeerInfo], Coroutine[Any, Any, None]] | None = None) -> None:
        self.cfg = cfg
        self.on_open = on_open  # a peer passed CER (run beside the connection)
        self.metrics = metrics
        self.allowed = allowed
        self.clock = clock
        self.handlers = {h.app_id: h for h in handlers}
        self.peers = peers or Peers()
        self.cache = AnswerCache(cfg.answer_cache_size)
        self.me = Identity(cfg.origin_host, cfg.origin_realm, _host_ip(cfg.host),
                           cfg.product_name, apps=tuple(sorted(self.handlers)) or (
                               base.APP_GY,))
        self._conns: set[_Conn] = set()
        # The metrics' children by label values, looked up once (a few apps, commands and
        # result codes).
        self._answer_counts: dict[tuple[int, int, int | None], Any] = {}
        self._latencies: dict[int, Any] = {}
        self._rng = random.Random()
        self.port: int | None = None

    def count_answer(self, app_id: int, command: int, rc: int | None) -> None:
        assert self.metrics is not None
        key = (app_id, command, rc)
        child = self._answer_counts.get(key)
        if child is None:
            child = self._answer_counts[key] = self.metrics.diameter_answers.labels(
                str(app_id), str(command), str(rc or "none"))
        child.inc()

    def observe_latency(self, app_id: int, seconds: float) -> None:
        assert self.metrics is not None
        child = self._latencies.get(app_id)
        if child is None:
            child = self._latencies[app_id] = self.metrics.diameter_latency.labels(
                str(app_id))
        child.observe(seconds)

    def seed(self) -> int:
        """First Hop-by-Hop / End-to-End id of a connection: clock high bits + random."""
        return ((int(self.clock.now().timestamp()) & 0xFFF) << 20) | \
            self._rng.getrandbits(20)

    async def handle(self, req: Message, conn: base.Connection) -> Message:
        assert conn.peer is not None
        app = self.handlers[codec.header_of(req).app_id]
        return await app.handle(req, conn.peer)

    async def serve(self, stopping: asyncio.Event,
                    started: asyncio.Event | None = None) -> None:
        """Accept connections until ``stopping``; then DPR every peer and close."""
        ctx: ssl.SSLContext | None = None
        if self.cfg.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(self.cfg.tls_cert_file), str(self.cfg.tls_key_file))
        async with asyncio.TaskGroup() as tg:
            def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                if len(self._conns) >= self.cfg.max_connections:
                    w.close()
                    return
                conn = _Conn(self, r, w)
                self._conns.add(conn)
                t = tg.create_task(conn.run())
                t.add_done_callback(lambda _t: self._conns.discard(conn))

            server = await asyncio.start_server(accept, self.cfg.host, self.cfg.port, ssl=ctx,
                                                reuse_address=True)
            self.port = int(server.sockets[0].getsockname()[1])
            logs.log(log, logging.INFO, "diameter listening", host=self.cfg.host,
                     port=self.port, tls=ctx is not None, origin_host=self.me.origin_host)
            if started is not None:
                started.set()
            try:
                await stopping.wait()
            finally:
                server.close()
                await asyncio.gather(*(c.disconnect() for c in list(self._conns)),
                                     return_exceptions=True)


def _host_ip(host: str) -> str:
    """The Host-IP-Address of CEA: the listening address, or the host's own if wildcard."""
    with contextlib.suppress(OSError):
        return socket.gethostbyname(
            socket.gethostname() if host in ("", "0.0.0.0", "::") else host)
    return "127.0.0.1"
