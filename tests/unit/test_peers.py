"""The test peer is a real HTTP/2 server: requests arrive over h2c and are recorded, and
the replies the test configured are what the client gets."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.peers import NotificationReceiver, Received, Reply, receivers


async def test_http2_post_arrives_and_is_recorded() -> None:
    async with NotificationReceiver() as smf, \
            httpx.AsyncClient(http1=False, http2=True) as client:
        before = time.monotonic()
        r = await client.post(smf.url("/notify/ref-1?x=1"),
                              json={"notificationType": "REAUTHORIZATION"},
                              headers={"3gpp-Sbi-Callback": "Nchf_ConvergedCharging_Notify"})
        assert r.status_code == 204
        assert r.http_version == "HTTP/2"
        got = await smf.wait_for(lambda q: q.path == "/notify/ref-1", timeout_s=5)
        assert got.method == "POST"
        assert got.http_version == "2"
        assert got.query == "x=1"
        assert got.json == {"notificationType": "REAUTHORIZATION"}
        assert got.header("content-type") == "application/json"
        assert got.header("3GPP-SBI-CALLBACK") == "Nchf_ConvergedCharging_Notify"
        assert got.status == 204
        assert before <= got.monotonic <= time.monotonic()
        assert abs(got.wall - datetime.now(UTC)) < timedelta(seconds=30)
        assert smf.base_url.startswith("http://127.0.0.1:") and smf.port > 0


async def test_configured_404_for_a_prefix_and_json_reply() -> None:
    async with NotificationReceiver() as smf, \
            httpx.AsyncClient(http1=False, http2=True) as client:
        smf.respond("/gone/", Reply(404, {"status": 404, "cause": "CONTEXT_NOT_FOUND"},
                                    content_type="application/problem+json"))
        gone = await client.post(smf.url("/gone/ref-9"), json={})
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"
        assert gone.json()["cause"] == "CONTEXT_NOT_FOUND"
        alive = await client.post(smf.url("/alive/ref-1"), json={})
        assert alive.status_code == 204
        statuses = [(r.path, r.status) for r in smf.requests]
        assert statuses == [("/gone/ref-9", 404), ("/alive/ref-1", 204)]


async def test_times_limited_failure_then_default_and_later_rule_wins() -> None:
    async with NotificationReceiver() as smf, \
            httpx.AsyncClient(http1=False, http2=True) as client:
        smf.respond("/n", Reply(500), times=2)
        codes = [(await client.post(smf.url("/n/1"), json={})).status_code for _ in range(3)]
        assert codes == [500, 500, 204]
        smf.respond("/n", Reply(503, headers={"Retry-After": "1"}), method="POST")
        smf.respond("/n/special", lambda req: Reply(200, {"echo": req.json["v"]}))
        r = await client.post(smf.url("/n/special"), json={"v": 7})
        assert r.status_code == 200 and r.json() == {"echo": 7}
        r = await client.post(smf.url("/n/other"), json={})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"


async def test_delay_records_on_arrival_and_answers_later() -> None:
    async with NotificationReceiver() as smf, \
            httpx.AsyncClient(http1=False, http2=True) as client:
        smf.respond("/slow", Reply(204, delay_s=0.3))
        sent = time.monotonic()
        task = asyncio.create_task(client.post(smf.url("/slow"), json={}))
        got = await smf.wait_for(lambda q: q.path == "/slow", timeout_s=5)
        assert not task.done()  # recorded before the reply was sent
        r = await task
        done = time.monotonic()
        assert r.status_code == 204
        assert sent <= got.monotonic <= done - 0.3  # the answer waited after the record


async def test_wait_for_times_out_with_what_did_arrive() -> None:
    async with NotificationReceiver() as smf, \
            httpx.AsyncClient(http1=False, http2=True) as client:
        await client.post(smf.url("/a"), json={})
        with pytest.raises(TimeoutError, match="/a"):
            await smf.wait_for(lambda q: q.path == "/b", timeout_s=0.2)


def test_sync_use_from_another_thread_and_wait_for_count() -> None:
    with NotificationReceiver() as smf:
        def send() -> None:
            with httpx.Client(http1=False, http2=True) as client:
                for i in range(3):
                    client.post(smf.url(f"/s/{i}"), json={"i": i})

        sender = threading.Thread(target=send)
        sender.start()
        got = smf.wait_for_sync(lambda q: q.path.startswith("/s/"), timeout_s=5, count=3)
        sender.join()
        assert [r.json["i"] for r in got] == [0, 1, 2]
        assert [r.seq for r in got] == sorted(r.seq for r in got)
        assert all(r.http_version == "2" for r in got)


def test_http1_also_served_and_body_bound() -> None:
    with NotificationReceiver(max_body_bytes=10) as smf, httpx.Client() as client:
        r = client.post(smf.url("/h1"), content=b"x" * 11)
        assert r.status_code == 413
        got: Received = smf.wait_for_sync(lambda q: q.path == "/h1")[0]
        assert got.http_version == "1.1" and got.status == 413


def test_records_are_bounded_and_rule_errors_answer_500() -> None:
    def broken(_: Received) -> Reply:
        raise ValueError("boom")

    with NotificationReceiver(max_records=2) as smf, \
            httpx.Client(http1=False, http2=True) as client:
        smf.respond("/broken", broken)
        assert client.post(smf.url("/broken"), json={}).status_code == 500
        assert isinstance(smf.errors[0], ValueError)
        for i in range(3):
            client.post(smf.url(f"/r/{i}"), json={})
        assert [r.path for r in smf.requests] == ["/r/1", "/r/2"]
        assert smf.dropped == 2


def test_several_peers_have_distinct_ports_and_stop() -> None:
    with receivers(2) as (a, b):
        assert a.port != b.port
        port = a.port
    with httpx.Client(http1=False, http2=True) as client, pytest.raises(httpx.ConnectError):
        client.post(f"http://127.0.0.1:{port}/x", json={})


def test_stops_promptly_while_a_client_keeps_its_connection_open() -> None:
    smf = NotificationReceiver(graceful_timeout_s=0.5).start()
    with httpx.Client(http1=False, http2=True) as client:
        assert client.post(smf.url("/x"), json={}).status_code == 204
        started = time.monotonic()
        smf.stop()
        assert time.monotonic() - started < 5.0
        with pytest.raises(httpx.TransportError):
            client.post(smf.url("/x"), json={})
