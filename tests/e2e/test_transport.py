"""The real servers over real HTTP/2 (h2c prior knowledge and TLS with ALPN h2)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.e2e.nfproc import running_nf

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
