"""Building responses the same way in every service (errors go through
``nf.sbi.problem``): as the framework's ``Response``, or straight on the ASGI channel (the
direct path, ``nf.sbi.direct``), from one ``Answer``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from quart import Response, request

from nf.config import Settings

JSON = "application/json"


@dataclass
class Answer:
    """What an operation answers: status, JSON body (None: no body), extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON


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


def to_response(a: Answer) -> Response:
    """``a`` as the framework's response."""
    if a.body is None and a.status == 204:
        resp = no_content()
        for k, v in a.headers.items():
            resp.headers[k] = v
        return resp
    return json_response(a.body, a.status, a.headers, content_type=a.content_type)


async def send_answer(send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
                      a: Answer) -> None:
    """``a`` straight on an ASGI channel (no framework involved)."""
    if a.body is None and a.status == 204:
        headers: list[tuple[bytes, bytes]] = []
        body = b""
    else:
        body = json.dumps(a.body, separators=(",", ":")).encode()
        headers = [(b"content-type", a.content_type.encode()),
                   (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in a.headers.items()]
    await send({"type": "http.response.start", "status": a.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def api_root(settings: Settings, host_url: str | None = None) -> str:
    """The base URI peers reach this NF at: configured, else the request's own host
    (``host_url``; default: the framework's current request's)."""
    return (settings.server.api_root or host_url or request.host_url).rstrip("/")
