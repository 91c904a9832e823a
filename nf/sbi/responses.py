"""Building success responses the same way in every service (errors go through
``nf.sbi.problem``)."""

from __future__ import annotations

import json
from typing import Any

from quart import Response, request

from nf.config import Settings

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  *, content_type: str = JSON) -> Response:
    resp = Response(json.dumps(body, separators=(",", ":")), status=status,
                    content_type=content_type)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def no_content() -> Response:
    """204 with no body and no content type (a 204 has no representation)."""
    resp = Response(b"", status=204)
    resp.headers.remove("Content-Type")
    return resp


def api_root(settings: Settings, host_url: str | None = None) -> str:
    """The base URI peers reach this NF at: configured, else the request's own host
    (``host_url``; default: the framework's current request's)."""
    return (settings.server.api_root or host_url or request.host_url).rstrip("/")
