"""The listener (``nf.diameter.peer``) in this process on a real socket, with a test PGW
in a thread: the NF's own requests to a connected peer (``Peers.request``, what RAR and SNR
use), their failures, the connection bound, and a handler that fails."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from nf.clock import SystemClock
from nf.diameter import base, codec
from nf.diameter.base import APP_GY, PeerInfo
from nf.diameter.codec import Message
from nf.diameter.peer import Listener, Peers, PeerUnavailable, _Conn
from nf.settings.diameter import DiameterSettings
from tests.diameter.client import PGW, REALM, Client

ALLOWED = base.allowed_from({"northwind": ([REALM], [PGW, "pgw2.northwind.test"])})


class Failing:
    """A Gy application whose handler raises: the request gets 5012, nothing else."""

    app_id = APP_GY

    async def handle(self, req: Message, peer: PeerInfo) -> Message:
        raise RuntimeError("boom")


@contextlib.asynccontextmanager
async def listening(**cfg: object) -> AsyncIterator[Listener]:
    settings = DiameterSettings(enabled=True, port=0, origin_host="ocs.mvno.test",
                                origin_realm="mvno.test", **cfg)  # type: ignore[arg-type]
    listener = Listener(settings, ALLOWED, [Failing()], SystemClock(), peers=Peers())
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(listener.serve(stop, started))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield listener
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _rar(session_id: str) -> Message:
    return codec.request(codec.CMD_RAR, APP_GY, [
        codec.new_avp(codec.AVP_SESSION_ID, session_id),
        codec.new_avp(codec.AVP_ORIGIN_HOST, b"ocs.mvno.test"),
        codec.new_avp(codec.AVP_ORIGIN_REALM, b"mvno.test"),
        codec.new_avp(codec.AVP_DESTINATION_REALM, REALM.encode()),
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
        codec.new_avp(285, 0)], hop_by_hop=0, end_to_end=0)  # Re-Auth-Request-Type


async def test_request_to_a_connected_peer_returns_its_answer() -> None:
    async with listening() as lst:
        assert lst.port is not None
        pgw = await asyncio.to_thread(Client, lst.port)
        try:
            await asyncio.to_thread(pgw.cer)
            assert lst.peers.connected(PGW) and not lst.peers.connected("pgw9")

            def answer_one() -> Message:
                req = pgw.recv()
                pgw.send(codec.answer(req, 2002, pgw.origin_host, pgw.origin_realm))
                return req

            got = asyncio.create_task(asyncio.to_thread(answer_one))
            ans = await lst.peers.request(PGW, _rar("ocs;1"), timeout_s=5)
            req = await got
            assert codec.result_code(ans) == 2002
            assert codec.header_of(ans).hop_by_hop == codec.header_of(req).hop_by_hop
            assert codec.get_str(req, codec.AVP_SESSION_ID) == "ocs;1"
            with pytest.raises(PeerUnavailable):  # connected, but it never answers
                await lst.peers.request(PGW, _rar("ocs;2"), timeout_s=0.3)
            with pytest.raises(PeerUnavailable):  # not connected at all
                await lst.peers.request("pgw9.northwind.test", _rar("ocs;3"), timeout_s=1)
        finally:
            pgw.close()
        for _ in range(100):  # the peer left: it is no longer offered
            if not lst.peers.connected(PGW):
                break
            await asyncio.sleep(0.05)
        assert not lst.peers.connected(PGW)


async def test_failing_handler_answers_5012_and_the_connection_stays() -> None:
    async with listening() as lst:
        assert lst.port is not None
        pgw = await asyncio.to_thread(Client, lst.port)
        try:
            await asyncio.to_thread(pgw.cer)
            req = pgw.request(codec.CMD_CCR, APP_GY, [
                codec.new_avp(codec.AVP_SESSION_ID, "pgw1;f;1"), *pgw.origin()])
            ans = await asyncio.to_thread(pgw.call, req)
            assert codec.result_code(ans) == codec.UNABLE_TO_COMPLY
            assert codec.result_code(await asyncio.to_thread(pgw.dwr)) == codec.SUCCESS
        finally:
            pgw.close()


async def test_connections_past_the_bound_are_closed() -> None:
    async with listening(max_connections=1) as lst:
        assert lst.port is not None
        first = await asyncio.to_thread(Client, lst.port)
        await asyncio.to_thread(first.cer)
        second = await asyncio.to_thread(Client, lst.port, "pgw2.northwind.test")
        try:
            assert await asyncio.to_thread(second.closed_by_peer)
            assert codec.result_code(await asyncio.to_thread(first.dwr)) == codec.SUCCESS
        finally:
            first.close()
            second.close()


async def test_a_reconnecting_peer_replaces_its_old_connection() -> None:
    async with listening() as lst:
        assert lst.port is not None
        old = await asyncio.to_thread(Client, lst.port)
        new = await asyncio.to_thread(Client, lst.port)
        try:
            await asyncio.to_thread(old.cer)
            await asyncio.to_thread(new.cer)
            assert await asyncio.to_thread(old.closed_by_peer)
            assert lst.peers.connected(PGW)

            def answer_one() -> None:
                req = new.recv()
                new.send(codec.answer(req, 2001, new.origin_host, new.origin_realm))

            got = asyncio.create_task(asyncio.to_thread(answer_one))
            ans = await lst.peers.request(PGW, _rar("ocs;9"), timeout_s=5)
            await got
            assert codec.result_code(ans) == 2001
        finally:
            old.close()
            new.close()


class Immediate:
    """A Gy application that answers 2001 at once."""

    app_id = APP_GY

    async def handle(self, req: Message, peer: PeerInfo) -> Message:
        return codec.answer(req, codec.SUCCESS, "ocs.mvno.test", "mvno.test")


class Recording:
    """The connection's stream writer, recording each write (one write, one system call)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    async def drain(self) -> None:
        return None

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 3868)


def _open_conn(writer: Recording) -> tuple[asyncio.StreamReader, _Conn]:
    settings = DiameterSettings(enabled=True, origin_host="ocs.mvno.test",
                                origin_realm="mvno.test")
    listener = Listener(settings, ALLOWED, [Immediate()], SystemClock(), peers=Peers())
    reader = asyncio.StreamReader()
    conn = _Conn(listener, reader, writer)  # type: ignore[arg-type]
    conn.core.peer = PeerInfo(PGW, REALM, "northwind", frozenset({APP_GY}))
    conn.core.state = base.State.OPEN
    return reader, conn


def _ccr_bytes(e2e: int) -> bytes:
    return codec.encode(codec.request(codec.CMD_CCR, APP_GY, [
        codec.new_avp(codec.AVP_SESSION_ID, f"pgw;{e2e}"),
        codec.new_avp(codec.AVP_ORIGIN_HOST, PGW.encode()),
        codec.new_avp(codec.AVP_ORIGIN_REALM, REALM.encode()),
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY)],
        hop_by_hop=100 + e2e, end_to_end=e2e))


async def test_answers_finished_together_are_written_together_in_order() -> None:
    writer = Recording()
    reader, conn = _open_conn(writer)
    async with asyncio.TaskGroup() as tg:
        for e2e in range(1, 6):
            reader.feed_data(_ccr_bytes(e2e))
        for _ in range(5):
            assert await conn._read_one(tg)
    assert len(writer.writes) == 1  # five answers, one write
    data = writer.writes[0]
    answers = []
    while data:
        n = codec.read_header(data).length
        answers.append(codec.decode(data[:n]))
        data = data[n:]
    assert [(codec.header_of(a).hop_by_hop, codec.result_code(a)) for a in answers] == \
        [(100 + e2e, codec.SUCCESS) for e2e in range(1, 6)]
    # Each is kept for a retransmission as it was sent.
    assert conn.listener.cache.get((PGW, 3)) == codec.encode(answers[2])


async def test_an_answer_waiting_to_be_written_goes_out_before_the_close() -> None:
    writer = Recording()
    _reader, conn = _open_conn(writer)
    ans = codec.answer(codec.decode(_ccr_bytes(1)), codec.SUCCESS, "ocs.mvno.test",
                       "mvno.test")
    conn.send_encoded(ans, codec.encode(ans), soon=True)
    assert writer.writes == []
    conn.close_soon()
    assert writer.writes == [codec.encode(ans)] and writer.closing
