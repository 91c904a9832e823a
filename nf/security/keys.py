"""The authorization server's verification keys (a JWKS): from a file, or from a URL that
is fetched at start and refreshed every ``oauth2.jwks_refresh_s``.

A key set that cannot be read leaves the previous one in place (tokens keep verifying
through a short outage of the key server); before the first successful load every token
is refused with 401.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from nf import logs
from nf.errors import ConfigError

log = logging.getLogger("nf.security")

MAX_JWKS_BYTES = 1024 * 1024


def parse_jwks(data: Any, where: str) -> KeySet:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) \
            or not data["keys"]:
        raise ConfigError(f"{where}: not a JWKS (an object with a non-empty 'keys' list)")
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{where}: unusable key set: {e}") from None


def load_file(path: Path) -> KeySet:
    try:
        raw = path.read_bytes()[: MAX_JWKS_BYTES + 1]
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the JWKS: {e.strerror}") from None
    if len(raw) > MAX_JWKS_BYTES:
        raise ConfigError(f"{path}: the JWKS is larger than {MAX_JWKS_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{path}: the JWKS is not JSON") from None
    return parse_jwks(data, str(path))


async def fetch(client: httpx.AsyncClient, uri: str) -> KeySet | None:
    """The key set at ``uri``, or ``None`` (logged) if it cannot be had now."""
    try:
        resp = await client.get(uri, headers={"accept": "application/json"})
        if resp.status_code != 200:
            raise ConfigError(f"{uri} answered {resp.status_code}")
        if len(resp.content) > MAX_JWKS_BYTES:
            raise ConfigError(f"{uri}: the JWKS is too large")
        return parse_jwks(resp.json(), uri)
    except (httpx.HTTPError, ValueError, ConfigError) as e:
        logs.log(log, logging.WARNING, "could not load the OAuth2 verification keys",
                 uri=uri, error=str(e)[:300])
        return None
