"""Reading request bodies safely: content type, size limit, JSON syntax, schema.

Every JSON entry point goes through ``read_model`` so bad input always becomes a clear
ProblemDetails and never reaches the service logic half-checked.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Request

from nf.errors import BadRequest, InvalidParam, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

_JSON_TYPES = ("application/json", "application/problem+json")


def _pointer(loc: tuple[int | str, ...]) -> str:
    return "/" + "/".join(str(p) for p in loc) if loc else "/"


def invalid_params(err: ValidationError) -> list[InvalidParam]:
    out = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function")))
        out.append(InvalidParam(param=_pointer(loc), reason=e["msg"]))
    return out[:50]


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body as parsed JSON, or an ``NfError``."""
    ctype = (request.mimetype or "").lower()
    if ctype not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"content type {request.mimetype or '(none)'!r} is not supported; "
            "use application/json"
        )
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"body of {length} bytes exceeds the limit of {max_bytes}")
    request.body_timeout = 10
    raw = await request.get_data(cache=False, as_text=False)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"body of {len(raw)} bytes exceeds the limit of {max_bytes}")
    if not raw:
        raise BadRequest("the request body is empty", cause="INVALID_MSG_FORMAT")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON: {e}", cause="INVALID_MSG_FORMAT") \
            from None
    except RecursionError:
        raise BadRequest("the body nests too deeply", cause="INVALID_MSG_FORMAT") from None


def parse_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        params = invalid_params(e)
        missing = [p for p, err in zip(params, e.errors(), strict=False)
                   if err["type"] == "missing"]
        cause = "MANDATORY_IE_MISSING" if missing and len(missing) == len(params) \
            else "MANDATORY_IE_INCORRECT"
        raise BadRequest(
            f"the body does not match {model.__name__}: " + "; ".join(
                f"{p.param}: {p.reason}" for p in params[:5]),
            cause=cause, invalid_params=params,
        ) from None
    except RecursionError:
        raise BadRequest("the body nests too deeply", cause="INVALID_MSG_FORMAT") from None


async def read_model(request: Request, model: type[M], max_bytes: int) -> M:
    return parse_model(model, await read_json(request, max_bytes))
