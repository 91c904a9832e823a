"""Render an ``NfError`` as a TS 29.571 ProblemDetails response. The only place that does."""

from __future__ import annotations

import json
from typing import Any

from quart import Response

from nf.errors import NfError

PROBLEM_JSON = "application/problem+json"


def problem_body(err: NfError, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:3gpp:problem:{err.cause.lower().replace('_', '-')}",
        "title": err.title,
        "status": err.status,
        "detail": err.detail,
        "cause": err.cause,
    }
    if instance:
        body["instance"] = instance
    if err.invalid_params:
        body["invalidParams"] = [
            {"param": p.param, "reason": p.reason} for p in err.invalid_params
        ]
    return body


def problem_response(err: NfError, instance: str | None = None) -> Response:
    resp = Response(
        json.dumps(problem_body(err, instance), separators=(",", ":")),
        status=err.status,
        content_type=PROBLEM_JSON,
    )
    if err.retry_after_s is not None:
        resp.headers["Retry-After"] = str(err.retry_after_s)
    if err.allow:
        resp.headers["Allow"] = ", ".join(err.allow)
    if err.www_authenticate:
        resp.headers["WWW-Authenticate"] = err.www_authenticate
    return resp
