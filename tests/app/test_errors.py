"""Every error leaves as one ProblemDetails (TS 29.571), through Quart's test client."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from nf import logs
from nf.clock import FakeClock
from nf.config import Settings
from nf.sbi.body import MAX_DEPTH
from nf.store.mongo import Db
from nf.wiring import create_app
from tests.e2e.probe_part import ProbePart

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "cause"}
JSON = {"content-type": "application/json"}


@pytest.fixture
def app(settings: Settings, db: Db, clock: FakeClock) -> Quart:
    s = settings.model_copy(update={"server": settings.server.model_copy(
        update={"max_body_bytes": 8192})})
    return create_app(s, role="sbi", clock=clock, db=db, parts=lambda rt: [ProbePart(rt)])


@pytest.fixture
async def client(app: Quart) -> AsyncIterator[Client]:
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def problem(resp: Any, status: int, cause: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(await resp.get_data())
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["type"].startswith("urn:3gpp:problem:")
    if cause is not None:
        assert body["cause"] == cause
    return body


async def test_valid_body_is_accepted(client: Client) -> None:
    r = await client.post("/probe/items", json={"name": "a", "quantity": 2})
    assert r.status_code == 201
    assert await r.get_json() == {"name": "a", "quantity": 2, "tags": []}


@pytest.mark.parametrize("raw", [b"{", b"{'a': 1}", b"[1,]", b"\xff\xfe{}", b"nul",
                                 b'{"a": NaN}', b'{"q": Infinity}', b"1" * 5000])
async def test_malformed_json_is_400_with_cause(client: Client, raw: bytes) -> None:
    r = await client.post("/probe/items", data=raw, headers=JSON)
    body = await problem(r, 400, "INVALID_MSG_FORMAT")
    assert "JSON" in body["detail"]
    assert body["instance"] == "/probe/items"


async def test_empty_body_is_400(client: Client) -> None:
    r = await client.post("/probe/items", data=b"", headers=JSON)
    body = await problem(r, 400, "INVALID_MSG_FORMAT")
    assert "empty" in body["detail"]


async def test_schema_failure_names_each_bad_field(client: Client) -> None:
    r = await client.post("/probe/items", json={"name": 5, "quantity": -1, "extra": True,
                                                "tags": ["ok", 3]})
    body = await problem(r, 400, "MANDATORY_IE_INCORRECT")
    params = {p["param"]: p["reason"] for p in body["invalidParams"]}
    assert set(params) == {"/name", "/quantity", "/extra", "/tags/1"}
    assert "greater than or equal to 0" in params["/quantity"]


async def test_missing_fields_are_mandatory_ie_missing(client: Client) -> None:
    r = await client.post("/probe/items", json={})
    body = await problem(r, 400, "MANDATORY_IE_MISSING")
    assert {p["param"] for p in body["invalidParams"]} == {"/name", "/quantity"}


@pytest.mark.parametrize("doc", [[1, 2], "text", 7, None])
async def test_wrong_top_level_type_is_400(client: Client, doc: object) -> None:
    r = await client.post("/probe/items", data=json.dumps(doc).encode(), headers=JSON)
    body = await problem(r, 400)
    assert body["invalidParams"][0]["param"] == "/"


async def test_deep_nesting_is_refused_before_the_schema(client: Client) -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    r = await client.post("/probe/items", data=deep.encode(), headers=JSON)
    body = await problem(r, 400, "INVALID_MSG_FORMAT")
    assert "nests deeper" in body["detail"]
    # Deeper than Python's own recursion limit: still a clean 400.
    very = b"[" * 3500 + b"]" * 3500
    r = await client.post("/probe/items", data=very, headers=JSON)
    await problem(r, 400, "INVALID_MSG_FORMAT")


async def test_lone_surrogate_is_refused(client: Client) -> None:
    r = await client.post("/probe/items", data=b'{"name": "\\ud800", "quantity": 1}',
                          headers=JSON)
    body = await problem(r, 400, "INVALID_MSG_FORMAT")
    assert "surrogate" in body["detail"]
    # A proper pair is fine.
    r = await client.post("/probe/items", data=b'{"name": "\\ud83d\\ude00", "quantity": 1}',
                          headers=JSON)
    assert r.status_code == 201
    assert (await r.get_json())["name"] == "\U0001f600"


async def test_unknown_resource_is_404(client: Client) -> None:
    body = await problem(await client.get("/does-not-exist"), 404, "RESOURCE_NOT_FOUND")
    assert body["instance"] == "/does-not-exist"
    body = await problem(await client.get("/probe/items/42"), 404, "RESOURCE_NOT_FOUND")
    assert body["detail"] == "no item 42"


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "OPTIONS"])
async def test_wrong_method_is_405_with_allow(client: Client, method: str) -> None:
    r = await client.open("/probe/items", method=method)
    body = await problem(r, 405, "METHOD_NOT_ALLOWED")
    assert method in body["detail"]
    assert r.headers["Allow"] == "POST"


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "application/jsonx"])
async def test_wrong_content_type_is_415(client: Client, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    r = await client.post("/probe/items", data=b'{"name":"a","quantity":1}', headers=headers)
    body = await problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in body["detail"]


async def test_json_with_charset_is_accepted(client: Client) -> None:
    r = await client.post("/probe/items", data=b'{"name":"a","quantity":1}',
                          headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 201


async def test_body_over_limit_with_content_length_is_413(client: Client) -> None:
    big = json.dumps({"name": "a", "quantity": 1, "pad": "x" * 9000}).encode()
    r = await client.post("/probe/items", data=big, headers=JSON)
    body = await problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert "limit" in body["detail"]


async def test_streamed_body_over_limit_is_413(client: Client) -> None:
    # No Content-Length: the limit is enforced while the body arrives.
    async with client.request("/probe/items", method="POST", headers=JSON) as conn:
        await conn.send(b'{"name": "a", "quantity": 1, "pad": "')
        for _ in range(20):
            await conn.send(b"x" * 500)
        await conn.send(b'"}')
        await conn.send_complete()
    r = await conn.as_response()
    await problem(r, 413, "PAYLOAD_TOO_LARGE")


async def test_streamed_body_within_limit_is_parsed(client: Client) -> None:
    async with client.request("/probe/items", method="POST", headers=JSON) as conn:
        for chunk in (b'{"name": ', b'"streamed", ', b'"quantity": 3}'):
            await conn.send(chunk)
        await conn.send_complete()
    r = await conn.as_response()
    assert r.status_code == 201
    assert (await r.get_json())["name"] == "streamed"


async def test_unexpected_exception_is_500_without_stack_trace(
    client: Client,
) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    app_log = logging.getLogger("nf.app")
    app_log.addHandler(handler)
    try:
        r = await client.get("/probe/boom", headers={"x-request-id": "req-500-abc"})
    finally:
        app_log.removeHandler(handler)
    body = await problem(r, 500, "SYSTEM_FAILURE")
    text = json.dumps(body)
    assert "Traceback" not in text and "DEADBEEF" not in text and "RuntimeError" not in text
    assert r.headers["x-request-id"] == "req-500-abc"
    # The log has it all, tied to the request id.
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    err = next(line for line in lines if line["msg"] == "unexpected error")
    assert err["request_id"] == "req-500-abc"
    assert err["level"] == "ERROR" and err["path"] == "/probe/boom"
    assert "DEADBEEF" in err["exc"]


async def test_request_id_is_echoed_or_generated(client: Client) -> None:
    r = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz")
    generated = r.headers["x-request-id"]
    assert len(generated) == 16
    # Not a plain token (log/header injection attempt): replaced.
    r = await client.get("/healthz", headers={"x-request-id": "a b\"c" + "x" * 80})
    assert r.headers["x-request-id"] not in ("", "a b\"c" + "x" * 80)
    # Errors carry it too.
    r = await client.get("/nowhere", headers={"x-request-id": "rid-404"})
    assert r.status_code == 404 and r.headers["x-request-id"] == "rid-404"


async def test_metrics_count_operations_and_status(app: Quart,
                                                   client: Client) -> None:
    await client.post("/probe/items", json={"name": "a", "quantity": 1})
    await client.post("/probe/items", data=b"{", headers=JSON)
    await client.get("/nowhere")
    text = app.extensions["nf.runtime"].metrics.render().decode()
    assert 'nf_sbi_requests_total{operation="probe_sbi.create_item",status="201"} 1.0' in text
    assert 'nf_sbi_requests_total{operation="probe_sbi.create_item",status="400"} 1.0' in text
    assert 'nf_sbi_requests_total{operation="unmatched",status="404"} 1.0' in text
    assert 'nf_sbi_request_duration_seconds_count{operation="probe_sbi.create_item"} 2.0' in text
    assert "nf_sbi_inflight_requests 0.0" in text


async def test_http1_on_the_sbi_is_505_when_not_enabled(settings: Settings, db: Db) -> None:
    strict = settings.model_copy(update={"server": settings.server.model_copy(
        update={"sbi_http1": False})})
    app = create_app(strict, role="sbi", db=db, parts=[])
    async with app.test_app():
        client = app.test_client()
        r = await client.get("/healthz", http_version="1.1")
        assert r.status_code == 505
        body = await r.get_json()
        assert body["cause"] == "HTTP_VERSION_NOT_SUPPORTED"
        assert r.headers["content-type"] == "application/problem+json"
        assert (await client.get("/healthz", http_version="2")).status_code == 200
