"""Render an ``NfError`` as a TS 29.571 ProblemDetails response. The only place that does."""

from __future__ import annotations

from typing import Any

from quart import Response

from nf.errors import NfError
from nf.sbi.responses import Answer, to_response

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


def problem_answer(err: NfError, instance: str | None = None) -> Answer:
    """The ProblemDetails of ``err`` with its headers (Retry-After, Allow,
    WWW-Authenticate), for either way of sending it."""
    headers: dict[str, str] = {}
    if err.retry_after_s is not None:
        headers["Retry-After"] = str(err.retry_after_s)
    if err.allow:
        headers["Allow"] = ", ".join(err.allow)
    if err.www_authenticate:
        headers["WWW-Authenticate"] = err.www_authenticate
    return Answer(err.status, problem_body(err, instance), headers, PROBLEM_JSON)


def problem_response(err: NfError, instance: str | None = None) -> Response:
    return to_response(problem_answer(err, instance))
