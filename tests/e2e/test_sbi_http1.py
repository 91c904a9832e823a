"""HTTP/1.1 on the SBI port, by setting (``server.sbi_http1``), against the real servers.

Off (the TS 29.500 default): a plain ``curl --http1.1`` gets an immediate 505 whose
ProblemDetails says how to connect, while h2c keeps working on the same port. On: the same
call is served, and HTTP/2 still is. Also the OpenAPI documents and the reference page on
the OAM port."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
import trustme
import yaml

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.e2e.nfproc import running_nf

pytestmark = pytest.mark.e2e

CHF = "/nchf-convergedcharging/v3/chargingdata"


def _curl_http1(url: str, *extra: str) -> tuple[int, dict[str, str], str]:
    if shutil.which("curl") is None:
        pytest.skip("curl is missing")
    out = subprocess.run(
        ["curl", "-sS", "--http1.1", "-i", "--max-time", "5", *extra, url],
        capture_output=True, text=True, timeout=10, check=True).stdout
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_http1_off_gets_an_explanation_and_h2c_still_works(
        server: str, db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    env = {"NF_SERVER__SBI_HTTP1": "false"}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, server=server,
                    extra_env=env) as nf:
        status, headers, body = _curl_http1(nf.sbi + CHF, "-X", "POST", "-H",
                                            "content-type: application/json", "-d", "{}")
        assert status == 505
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["cause"] == "HTTP_VERSION_NOT_SUPPORTED"
        assert "HTTP/2" in problem["detail"] and "--http2-prior-knowledge" in problem["detail"]
        assert "sbi_http1" in problem["detail"]
        with httpx.Client(http1=False, http2=True) as c:
            r = c.post(nf.sbi + CHF, json={})
            assert r.http_version == "HTTP/2" and r.status_code == 400


def test_http1_on_serves_http1_and_http2_on_one_port(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    env = {"NF_SERVER__SBI_HTTP1": "true"}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, extra_env=env) as nf:
        status, _headers, body = _curl_http1(nf.sbi + CHF, "-X", "POST", "-H",
                                            "content-type: application/json", "-d", "{}")
        # Served: the CHF's own validation answers (a body without the mandatory IEs).
        assert status == 400, body
        assert json.loads(body)["cause"] in ("MANDATORY_IE_MISSING", "INVALID_MSG_FORMAT")
        with httpx.Client(http1=True, http2=False) as c:
            r = c.get(nf.sbi + "/healthz")
            assert r.http_version == "HTTP/1.1" and r.status_code == 200
        with httpx.Client(http1=False, http2=True) as c:
            r = c.get(nf.sbi + "/healthz")
            assert r.http_version == "HTTP/2" and r.status_code == 200


def test_tls_offers_http1_by_alpn_when_on(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    env = {"NF_SERVER__SBI_HTTP1": "true"}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, extra_env=env,
                    tls=(cert_file, key_file)) as nf:
        with httpx.Client(http1=True, http2=False, verify=ctx) as c:
            r = c.get(nf.sbi + "/healthz")
            assert r.http_version == "HTTP/1.1" and r.status_code == 200
        with httpx.Client(http1=True, http2=True, verify=ctx) as c:
            r = c.get(nf.sbi + "/healthz")
            assert r.http_version == "HTTP/2" and r.status_code == 200


def test_openapi_documents_point_at_the_running_nf(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path) as nf:
        page = httpx.get(nf.oam + "/openapi/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for path in ("/openapi/assets/swagger-ui-bundle.js", "/openapi/assets/swagger-ui.css"):
            asset = httpx.get(nf.oam + path)
            assert asset.status_code == 200 and len(asset.content) > 1000, path
            assert path.split("/")[-1] in page.text
        expected = {
            "chf": nf.sbi + "/nchf-convergedcharging/v3",
            "pcf": nf.sbi + "/npcf-smpolicycontrol/v1",
            "slc": nf.sbi + "/nchf-spendinglimitcontrol/v1",
            "provisioning": nf.oam + "/provisioning/v1",
        }
        for name, url in expected.items():
            r = httpx.get(f"{nf.oam}/openapi/{name}.yaml")
            assert r.status_code == 200
            doc = yaml.safe_load(r.text)
            assert doc["servers"][0]["url"] == url
            assert f"/openapi/{name}.yaml" in page.text
            source = yaml.safe_load((Path(__file__).parents[2] / "openapi"
                                     / f"{name}.yaml").read_text())
            assert doc["paths"] == source["paths"]
        missing = httpx.get(nf.oam + "/openapi/nrf.yaml")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert httpx.get(nf.oam + "/openapi/assets/../../nf.yaml").status_code == 404
