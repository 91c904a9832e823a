"""An OAuth2 authorization server somebody else wrote, for tests: npm ``oauth2-mock-server``
(8.2.3; 9.x needs Node 22), installed once per machine into
``~/.cache/mvno-nf/node-oauth2-mock-server-8.2.3`` under a lock, run by a few lines of
Node that play an NRF's token endpoint (TS 29.510 Nnrf_AccessToken): a client-credentials
request with the 3GPP form fields gets an ES256 JWT whose ``iss`` is the NRF's id, ``sub``
the requester's ``nfInstanceId``, ``aud`` the ``targetNfInstanceId`` or ``targetNfType``,
``scope`` the requested scope and ``consumerPlmnId`` the ``requesterPlmn``. Its keys are
at ``/jwks``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.nrf_peer import cache_root

VERSION = "8.2.3"

_SCRIPT = """
import { OAuth2Server } from 'oauth2-mock-server';
const nrfId = process.argv[2];
const server = new OAuth2Server();
await server.issuer.keys.generate('ES256');
server.service.on('beforeTokenSigning', (token, req) => {
  const b = req.body || {};
  token.payload.iss = nrfId;
  if (b.nfInstanceId) token.payload.sub = b.nfInstanceId;
  token.payload.aud = b.targetNfInstanceId || b.targetNfType;
  if (b.scope) token.payload.scope = b.scope;
  if (b.requesterPlmn) token.payload.consumerPlmnId = JSON.parse(b.requesterPlmn);
});
await server.start(0, '127.0.0.1');
console.log(JSON.stringify({ url: server.issuer.url }));
process.stdin.resume();
process.stdin.on('end', () => server.stop().then(() => process.exit(0)));
"""


class Unavailable(Exception):
    """Node or npm is missing, or the package could not be installed."""


def install() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("node/npm are not installed: cannot run oauth2-mock-server")
    root = cache_root() / f"node-oauth2-mock-server-{VERSION}"
    marker = root / "node_modules" / "oauth2-mock-server" / "package.json"
    root.mkdir(parents=True, exist_ok=True)
    with open(str(root) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.is_file():
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent",
                                f"oauth2-mock-server@{VERSION}"], cwd=root,
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0 or not marker.is_file():
                raise Unavailable(f"npm install oauth2-mock-server failed: {r.stderr[-2000:]}")
        script = root / "nrf-token-endpoint.mjs"
        if not script.is_file() or script.read_text() != _SCRIPT:
            script.write_text(_SCRIPT)
    return script


class TokenEndpoint:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks"

    def jwks(self) -> dict[str, Any]:
        r = httpx.get(self.jwks_uri, timeout=10)
        r.raise_for_status()
        keys: dict[str, Any] = r.json()
        return keys

    def token(self, **form: Any) -> str:
        """An access token for a TS 29.510 AccessTokenReq (complex fields as JSON)."""
        data = {"grant_type": "client_credentials",
                **{k: json.dumps(v) if isinstance(v, dict) else str(v)
                   for k, v in form.items()}}
        r = httpx.post(f"{self.url}/token", data=data, timeout=10)
        r.raise_for_status()
        return str(r.json()["access_token"])


@contextlib.contextmanager
def running_token_endpoint(nrf_id: str) -> Iterator[TokenEndpoint]:
    script = install()
    proc = subprocess.Popen(["node", str(script), nrf_id], cwd=script.parent,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"oauth2-mock-server did not start: "
                               f"{proc.stderr.read() if proc.stderr else ''}")
        yield TokenEndpoint(json.loads(line)["url"])
    finally:
        proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes the pipes
