"""The real servers over real HTTP/2 (h2c prior knowledge and TLS with ALPN h2)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from h2.settings import SettingCodes
from pymongo import MongoClient

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.e2e.h2raw import RawH2
from tests.e2e.nfproc import running_nf
from tests.e2e.probe_part import MARKERS

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_h2c_prior_knowledge_unknown_path_is_problem_404(
    server: str, db_server: EmbeddedDb, settings: Settings, tmp_path: Path
) -> None:
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, server=server) as nf, \
            httpx.Client(http1=False, http2=True) as c:
        r = c.get(nf.sbi + "/does-not-exist")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["status"] == 404 and body["cause"] == "RESOURCE_NOT_FOUND"
        # Many requests on one connection: the connection is never cut.
        for _ in range(1100 if server == "hypercorn" else 50):
            assert c.get(nf.sbi + "/x").status_code == 404
        ready = httpx.get(nf.oam + "/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["sbi"] is True  # nf serve: readiness includes the SBI listener
        assert "nf_sbi_requests_total" in httpx.get(nf.oam + "/metrics").text


def test_tls_alpn_h2(db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                    tls=(cert_file, key_file)) as nf, \
            httpx.Client(http2=True, verify=ctx) as c:
        r = c.get(nf.sbi + "/nothing-here")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
    # An untrusted client refuses the certificate: TLS is real.
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                    tls=(cert_file, key_file)) as nf, \
            httpx.Client(http2=True) as c, pytest.raises(httpx.ConnectError):
        c.get(nf.sbi + "/nothing-here")


PROBE = {"NF_EXTRA_PARTS": '["tests.e2e.probe_part:make"]'}
H2C = {"http1": False, "http2": True}


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_http2_settings_come_from_config(
    server: str, db_server: EmbeddedDb, settings: Settings, tmp_path: Path
) -> None:
    env = {"NF_SERVER__H2_MAX_CONCURRENT_STREAMS": "77"}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, server=server,
                    extra_env=env) as nf:
        host, port = nf.sbi.removeprefix("http://").split(":")
        c = RawH2(host, int(port))
        try:
            server_settings = c.handshake()
            r = c.get("/healthz")
        finally:
            c.close()
    assert server_settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 77
    assert r.status == 200 and json.loads(r.body) == {"status": "alive"}


def _streamed(total: int, chunk: int = 4096) -> Iterator[bytes]:
    yield b'{"name": "a", "quantity": 1, "pad": "'
    sent = 0
    while sent < total:
        yield b"x" * chunk
        sent += chunk
    yield b'"}'


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_errors_over_real_http2(
    server: str, db_server: EmbeddedDb, settings: Settings, tmp_path: Path
) -> None:
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, server=server,
                    extra_env=PROBE) as nf, httpx.Client(**H2C, timeout=20) as c:
        url = nf.sbi + "/probe/items"

        def problem(r: httpx.Response, status: int, cause: str) -> dict[str, Any]:
            assert r.http_version == "HTTP/2"
            assert r.status_code == status, r.text
            assert r.headers["content-type"] == "application/problem+json"
            body: dict[str, Any] = r.json()
            assert body["status"] == status and body["cause"] == cause
            assert {"type", "title", "detail", "instance"} <= set(body)
            return body

        ok = c.post(url, json={"name": "a", "quantity": 1})
        assert ok.status_code == 201 and ok.json()["name"] == "a"
        problem(c.post(url, content=b"{oops", headers={"content-type": "application/json"}),
                400, "INVALID_MSG_FORMAT")
        body = problem(c.post(url, json={"name": "", "quantity": "many"}), 400,
                       "MANDATORY_IE_INCORRECT")
        assert {p["param"] for p in body["invalidParams"]} == {"/name", "/quantity"}
        r = c.delete(url)
        problem(r, 405, "METHOD_NOT_ALLOWED")
        assert r.headers["allow"] == "POST"
        problem(c.post(url, content=b"{}", headers={"content-type": "text/plain"}), 415,
                "UNSUPPORTED_MEDIA_TYPE")
        problem(c.post(url, json={"pad": "x" * 70_000}), 413, "PAYLOAD_TOO_LARGE")
        problem(c.post(url, content=_streamed(100_000),
                       headers={"content-type": "application/json"}), 413, "PAYLOAD_TOO_LARGE")
        r = c.get(nf.sbi + "/probe/boom", headers={"x-request-id": "e2e-boom-1"})
        body = problem(r, 500, "SYSTEM_FAILURE")
        assert "DEADBEEF" not in r.text and "Traceback" not in r.text
        assert r.headers["x-request-id"] == "e2e-boom-1"
        # The worker survived all of that on the same connection.
        assert c.post(url, json={"name": "b", "quantity": 2}).status_code == 201
    logged = [json.loads(line) for line in nf.log.read_text().splitlines()
              if line.startswith("{")]
    boom = [x for x in logged if x.get("request_id") == "e2e-boom-1"]
    assert boom and boom[0]["msg"] == "unexpected error" and "DEADBEEF" in boom[0]["exc"]


def _stale_metrics(directory: Path) -> None:
    code = ("from nf.metrics import Metrics; "
            "Metrics().requests.labels('stale_op', '200').inc(99)")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert list(directory.glob("*.db"))


def test_two_sbi_workers_share_the_port_and_metrics_aggregate(
    db_server: EmbeddedDb, settings: Settings, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    _stale_metrics(metrics_dir)  # a previous run's samples must not be counted
    env = {**PROBE, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, workers=2,
                    extra_env=env) as nf:
        pids: set[int] = set()
        sent = 0
        for _ in range(60):  # each new connection may land on either worker
            with httpx.Client(**H2C) as c:
                for _ in range(5):
                    r = c.get(nf.sbi + "/probe/pid")
                    # Index checks are the OAM process's alone (nf.sbi.entry).
                    assert r.status_code == 200 and r.json()["indexed"] is False
                    pids.add(r.json()["pid"])
                    sent += 1
            if len(pids) == 2 and sent >= 50:
                break
        assert len(pids) == 2
        text = httpx.get(nf.oam + "/metrics").text
        with MongoClient(db_server.uri) as mc:  # ... which built the probe's index
            names = [i["name"] for i in mc[settings.mongodb_database][MARKERS].list_indexes()]
        assert "kind_1_pid_1" in names
    assert "stale_op" not in text
    line = f'nf_sbi_requests_total{{operation="probe_sbi.pid",status="200"}} {float(sent)}'
    assert line in text, text
    assert f'nf_sbi_request_duration_seconds_count{{operation="probe_sbi.pid"}} {float(sent)}' \
        in text
    assert "nf_sbi_inflight_requests 0.0" in text
    with MongoClient(db_server.uri) as m:
        started = {d["pid"] for d in m[settings.mongodb_database]["probe_markers"].find(
            {"kind": "started"})}
    assert pids < started and len(started) == 3  # two SBI workers and the OAM server
