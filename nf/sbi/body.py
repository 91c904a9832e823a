"""Reading request bodies safely: content type, size limit, JSON syntax, shape, schema.

Every JSON entry point goes through ``read_model`` (or ``read_json`` + ``parse_model``) so
bad input always becomes a clear ProblemDetails and never reaches the service logic
half-checked. Besides syntax, a body is refused if it nests deeper than ``MAX_DEPTH``
(MongoDB stores at most 100 levels and recursion must stay bounded), if it carries lone
UTF-16 surrogates (they cannot be stored or re-encoded), or non-standard numbers (NaN,
Infinity, integers of thousands of digits), if any integer lies outside what MongoDB
stores (a signed 64-bit integer), or if an object key holds a NUL character (a stored key
cannot): each of those is a 400 whose ``invalidParams`` names the place, so no request can
carry a value that would only fail when a shared batch writes it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Request

from nf.errors import BadRequest, InvalidParam, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

JSON_TYPES = ("application/json", "application/problem+json")
MERGE_PATCH_TYPES = ("application/merge-patch+json", "application/json")
MAX_DEPTH = 32
MAX_INVALID_PARAMS = 50
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Only a body with a run of 19+ digits can hold an integer beyond int64, and only one with
# an escaped NUL can hold a NUL key: the walk below runs only for those.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_NUL_ESCAPE = b"\\u0000"


def _pointer(loc: tuple[int | str, ...]) -> str:
    return "/" + "/".join(str(p) for p in loc) if loc else "/"


def invalid_params(err: ValidationError) -> list[InvalidParam]:
    out = []
    for e in err.errors(include_url=False, include_input=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function")))
        out.append(InvalidParam(param=_pointer(loc), reason=e["msg"]))
    return out[:MAX_INVALID_PARAMS]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_shape(value: Any) -> None:
    """Refuse nesting beyond ``MAX_DEPTH``, strings with lone surrogates, integers outside
    int64 and NUL characters in keys (the last two listed in ``invalidParams``)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    bad: list[InvalidParam] = []
    while stack:
        v, depth, path = stack.pop()
        if isinstance(v, dict):
            if depth > MAX_DEPTH:
                raise BadRequest(f"the body nests deeper than {MAX_DEPTH} levels")
            for k, item in v.items():
                _check_text(k)
                if "\0" in k:
                    bad.append(InvalidParam(param=path + "/" + k.replace("\0", "\\u0000"),
                                            reason="a key must not contain a NUL character"))
                stack.append((item, depth + 1, f"{path}/{k}"))
        elif isinstance(v, list):
            if depth > MAX_DEPTH:
                raise BadRequest(f"the body nests deeper than {MAX_DEPTH} levels")
            stack.extend((item, depth + 1, f"{path}/{i}") for i, item in enumerate(v))
        elif isinstance(v, str):
            _check_text(v)
        elif isinstance(v, int) and not isinstance(v, bool) and not (
                INT64_MIN <= v <= INT64_MAX):
            bad.append(InvalidParam(param=path or "/",
                                    reason="integer outside the signed 64-bit range"))
        if len(bad) >= MAX_INVALID_PARAMS:
            break
    if bad:
        bad.sort(key=lambda p: p.param)
        raise BadRequest("the body holds values that cannot be stored: " + "; ".join(
            f"{p.param}: {p.reason}" for p in bad[:5]), cause="MANDATORY_IE_INCORRECT",
            invalid_params=bad)


def _check_text(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body contains an unpaired UTF-16 surrogate") from None


def parse_json(raw: bytes) -> Any:
    """Parse and shape-check a JSON document, or raise ``BadRequest``."""
    if not raw:
        raise BadRequest("the request body is empty")
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest("the body nests too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    except ValueError as e:  # NaN/Infinity, integers beyond the digit limit
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    # Cheap pre-checks keep the walk off the common path.
    if (raw.count(b"{") + raw.count(b"[") > MAX_DEPTH or _SURROGATE_ESCAPE.search(raw)
            or _LONG_DIGITS.search(raw) or _NUL_ESCAPE in raw):
        _check_shape(value)
    return value


class BodySource(Protocol):
    """A request body to read: the framework's request, or the direct path's
    (``nf.sbi.direct``)."""

    @property
    def mimetype(self) -> str: ...

    @property
    def content_length(self) -> int | None: ...

    async def body(self) -> bytes: ...


class QuartBody:
    __slots__ = ("_r",)

    def __init__(self, r: Request) -> None:
        self._r = r

    @property
    def mimetype(self) -> str:
        return self._r.mimetype

    @property
    def content_length(self) -> int | None:
        return self._r.content_length

    async def body(self) -> bytes:
        raw = await self._r.get_data(cache=False, as_text=False)
        return raw.encode() if isinstance(raw, str) else raw


async def read_json(request: Request | BodySource, max_bytes: int,
                    content_types: tuple[str, ...] = JSON_TYPES) -> Any:
    """The request body as parsed JSON, or an ``NfError``."""
    src = QuartBody(request) if isinstance(request, Request) else request
    ctype = (src.mimetype or "").lower()
    if ctype not in content_types:
        raise UnsupportedMediaType(
            f"content type {src.mimetype or '(none)'!r} is not supported; "
            f"use {content_types[0]}"
        )
    length = src.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"body of {length} bytes exceeds the limit of {max_bytes}")
    raw = await src.body()
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"body of {len(raw)} bytes exceeds the limit of {max_bytes}")
    return parse_json(raw)


def parse_model(model: type[M], data: Any) -> M:
    """Validate parsed JSON against a wire model; every bad field lands in invalidParams."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_input=False)
        params = invalid_params(e)
        missing = sum(1 for err in errors if err["type"] == "missing")
        cause = "MANDATORY_IE_MISSING" if missing and missing == len(errors) \
            else "MANDATORY_IE_INCORRECT"
        raise BadRequest(
            f"the body does not match {model.__name__}: " + "; ".join(
                f"{p.param}: {p.reason}" for p in params[:5]),
            cause=cause, invalid_params=params,
        ) from None
    except RecursionError:
        raise BadRequest("the body nests too deeply") from None


async def read_model(request: Request | BodySource, model: type[M], max_bytes: int,
                     content_types: tuple[str, ...] = JSON_TYPES) -> M:
    return parse_model(model, await read_json(request, max_bytes, content_types))
