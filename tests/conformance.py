"""Check what the NF sends and receives against the 3GPP Rel-17 OpenAPI documents.

The documents live beside the repository (``ROOT.parent / "shared" / "3gpp" / "Rel-17"``);
they are reference data and are never copied into the repository. Each document is loaded
once per process (by file path, so the relative ``$ref: 'TS29571_CommonData.yaml#/...'``
references resolve against the same folder) and kept in a cache.

Use::

    from tests import conformance as c

    c.validate_request(c.CHF, "POST", "/nchf-convergedcharging/v3/chargingdata", body)
    c.validate_response(c.CHF, "POST", "/nchf-convergedcharging/v3/chargingdata", 201, body,
                        headers={"Location": "..."})
    c.validate_schema(c.CHF, "ChargingNotifyRequest", body)        # callbacks/notifications
    c.validate_exchange(c.PCF, response)                          # an httpx.Response

Every function raises ``AssertionError`` listing every problem found (JSON path + message);
the ``*_errors`` variants return that list instead. Paths are the full paths the NF serves
(``/npcf-smpolicycontrol/v1/sm-policies/{id}/update``); the document's server URL
``{apiRoot}/npcf-smpolicycontrol/v1`` supplies the prefix, so a wrong API name or version in
the path is reported as "path not found". A full URL is accepted too (scheme and host are
ignored, the query string is validated as query parameters).

3GPP quirks and what this module does about them:

* ``oneOf`` branches overlap. 3GPP object schemas never say ``additionalProperties: false``
  and most of their properties are optional, so one body is often valid under several
  branches (e.g. a 4xx body of TS 32.291 is ``oneOf [ProblemDetails, ChargingDataResponse]``:
  every ChargingDataResponse is also a valid ProblemDetails, so a strict ``oneOf`` rejects
  the very body the specification asks for). ``oneOf`` without a discriminator is therefore
  checked as ``anyOf``: the body must match at least one branch.
* ``application/problem+json`` (and the ``merge-patch``/``json-patch`` types) are not parsed
  as JSON by openapi-core by default; they are registered here so their schemas apply.
* Nullable values are written three ways: ``nullable: true`` on a schema (honoured),
  ``anyOf [X, NullValue]`` where ``NullValue`` is ``enum: [null]`` (honoured: null passes the
  enum), and ``nullable: true`` beside a ``$ref`` in a property (ignored, as OpenAPI 3.0 says
  sibling keywords of ``$ref`` are; the referenced schema decides). Nothing is relaxed.
* Extensible enumerations are ``anyOf [{enum: [...]}, {type: string}]``: any string passes.
  Exact enum values must be asserted by the test itself.
* Formats: ``date-time`` and ``date`` are checked (RFC 3339; a date-time without an offset
  is rejected), ``int32``/``int64`` ranges are checked, ``uuid``/``byte`` are checked,
  unknown 3GPP formats (e.g. ``SubId``) are ignored. ``Uint32``/``Uint64`` are plain
  ``integer`` with ``minimum``/``maximum`` and are checked as such.
* Some patterns accept anything: ``Supi`` ends in ``|.+``. Assert exact forms yourself.
* A body on a response the document gives none (a 204) is reported here; openapi-core
  alone ignores it. A 201 must carry the headers the document marks required (Location).
* ``readOnly``/``writeOnly`` are enforced in the usual OpenAPI direction: request bodies and
  callback bodies are "write", response bodies are "read".
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, urlsplit

import yaml
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from jsonschema.validators import extend  # type: ignore[import-untyped]
from jsonschema_path import SchemaPath
from jsonschema_path.handlers.utils import uri_to_path
from jsonschema_path.loaders import JsonschemaSafeLoader
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types import media_type_deserializers
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from openapi_schema_validator import _keywords as oas_keywords

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT.parent / "shared" / "3gpp" / "Rel-17"

CHF = "TS32291_Nchf_ConvergedCharging.yaml"
PCF = "TS29512_Npcf_SMPolicyControl.yaml"
SLC = "TS29594_Nchf_SpendingLimitControl.yaml"
COMMON = "TS29571_CommonData.yaml"

Direction = Literal["request", "response"]

_HOST = "http://nf.test"  # matches the documents' "{apiRoot}" server variable
_JSON_TYPES = (
    "application/json",
    "application/problem+json",
    "application/merge-patch+json",
    "application/json-patch+json",
)
_MAX_MESSAGE = 300
_MAX_BRANCH_ERRORS = 3


def _one_of_as_any_of(
    validator: Any, one_of: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if "discriminator" in schema:
        yield from oas_keywords.oneOf(validator, one_of, instance, schema)
    else:
        yield from oas_keywords.anyOf(validator, one_of, instance, schema)


_WRITE = extend(OAS30WriteValidator, {"oneOf": _one_of_as_any_of})
_READ = extend(OAS30ReadValidator, {"oneOf": _one_of_as_any_of})
_WRITE_FACTORY = SchemaValidatorsFactory(_WRITE)
_READ_FACTORY = SchemaValidatorsFactory(_READ)
_DESERIALIZERS = {name: json_loads for name in _JSON_TYPES if name not in media_type_deserializers}

_lock = threading.Lock()


def spec_path(spec_file: str) -> Path:
    """The 3GPP document ``spec_file`` (a bare file name such as ``CHF``)."""
    path = SPEC_DIR / spec_file
    if not path.is_file():
        raise FileNotFoundError(f"3GPP document not found: {path}")
    return path


def read_yaml(path: Path) -> Any:
    """A YAML document as JSON data (timestamps stay strings), parsed once per process and
    again only when the file changes. Treat the result as read-only: it is shared."""
    stat = path.stat()
    return _read_yaml(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _read_yaml(path: Path, mtime_ns: int, size: int) -> Any:
    with path.open(encoding="utf-8") as stream:
        data = yaml.load(stream, Loader=cast(Any, JsonschemaSafeLoader))
    return json.loads(json.dumps(data))


def _file_handler(uri: str) -> Any:
    """Resolve ``file:`` references from the cache; other schemes are never fetched."""
    return read_yaml(Path(uri_to_path(uri)).resolve())


def schema_path(path: Path) -> SchemaPath:
    """An OpenAPI document whose relative ``$ref``s resolve against its own folder."""
    path = path.resolve()
    return SchemaPath.from_dict(
        read_yaml(path), base_uri=path.as_uri(), handlers={"file": _file_handler},
        resolved_cache_maxsize=4096,
    )


@functools.cache
def _spec(spec_file: str) -> SchemaPath:
    return schema_path(spec_path(spec_file))


@functools.cache
def _apis(spec_file: str) -> tuple[OpenAPI, OpenAPI]:
    """(request-side, response-side) validators; the document itself is validated once."""
    spec = _spec(spec_file)
    common: dict[str, Any] = {"extra_media_type_deserializers": _DESERIALIZERS}
    requests = OpenAPI(spec, config=Config(schema_validators_factory=_WRITE_FACTORY, **common))
    responses = OpenAPI(
        spec,
        config=Config(
            spec_validator_cls=None, schema_validators_factory=_READ_FACTORY, **common
        ),
    )
    return requests, responses


def load(spec_file: str) -> tuple[OpenAPI, OpenAPI]:
    """Parse (once per process, thread-safe) and return the document's validators."""
    with _lock:
        return _apis(spec_file)


# -- requests and responses -------------------------------------------------------------------


def _encode(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _mock_request(
    method: str,
    url_path: str,
    body: Any,
    content_type: str,
    headers: Mapping[str, str] | None,
    query: Mapping[str, str] | None,
) -> MockRequest:
    parts = urlsplit(url_path)
    args = dict(parse_qsl(parts.query, keep_blank_values=True))
    args.update(query or {})
    return MockRequest(
        _HOST,
        method.lower(),
        parts.path,
        args=args,
        headers=dict(headers or {}),
        data=_encode(body),
        content_type=content_type,
    )


def request_errors(
    spec_file: str,
    method: str,
    url_path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> list[str]:
    """Every way the request departs from ``spec_file`` (empty when it conforms).

    ``body``: a JSON-able value (encoded here), raw ``bytes``/``str``, or ``None`` for none.
    """
    api, _ = load(spec_file)
    request = _mock_request(method, url_path, body, content_type, headers, query)
    return _describe(api.request_validator.iter_errors(request))


def response_errors(
    spec_file: str,
    method: str,
    url_path: str,
    status: int,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    """Every way the response departs from ``spec_file`` (empty when it conforms)."""
    _, api = load(spec_file)
    request = _mock_request(method, url_path, None, "application/json", None, None)
    data = _encode(body) or b""
    response = MockResponse(
        data, status_code=status, headers=dict(headers or {}), content_type=content_type
    )
    errors = _describe(api.response_validator.iter_errors(request, response))
    if data and not errors and not _response_has_content(spec_file, method, url_path, status):
        errors.append(f"a {len(data)}-byte body where {spec_file} defines none for {status}")
    return errors


def _response_has_content(spec_file: str, method: str, url_path: str, status: int) -> bool:
    """Whether the document gives the response a body (openapi-core ignores stray ones)."""
    raw = read_yaml(spec_path(spec_file))
    servers = raw.get("servers") or [{}]
    prefix = urlsplit(str(servers[0].get("url", "")).replace("{apiRoot}", "")).path
    path = urlsplit(url_path).path
    for template, item in (raw.get("paths") or {}).items():
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(prefix.rstrip("/") + template))
        if not re.fullmatch(pattern, path) or method.lower() not in item:
            continue
        responses = _spec(spec_file) / "paths" / template / method.lower() / "responses"
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                return "content" in (responses / key)  # SchemaPath follows $ref here
    return True  # unknown here: openapi-core has reported it already


def validate_request(
    spec_file: str,
    method: str,
    url_path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> None:
    """Raise ``AssertionError`` listing every schema error of the request."""
    errors = request_errors(
        spec_file, method, url_path, body,
        content_type=content_type, headers=headers, query=query,
    )
    _raise(errors, f"{method.upper()} {url_path} request does not conform to {spec_file}")


def validate_response(
    spec_file: str,
    method: str,
    url_path: str,
    status: int,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> None:
    """Raise ``AssertionError`` listing every schema error of the response."""
    errors = response_errors(
        spec_file, method, url_path, status, body, content_type=content_type, headers=headers
    )
    _raise(
        errors, f"{method.upper()} {url_path} -> {status} response does not conform to {spec_file}"
    )


def validate_exchange(spec_file: str, response: Any) -> None:
    """Validate an ``httpx.Response`` and the request that produced it, in one call."""
    request = response.request
    req_type = request.headers.get("content-type", "application/json")
    content = request.content or None
    errors = request_errors(
        spec_file, request.method, str(request.url), content,
        content_type=req_type.split(";")[0].strip(), headers=dict(request.headers),
    )
    resp_type = response.headers.get("content-type", "application/json")
    errors += response_errors(
        spec_file, request.method, str(request.url), response.status_code,
        response.content or None,
        content_type=resp_type.split(";")[0].strip(), headers=dict(response.headers),
    )
    _raise(
        errors,
        f"{request.method} {request.url.path} -> {response.status_code} "
        f"does not conform to {spec_file}",
    )


# -- named schemas (callbacks, notifications, fragments) --------------------------------------


def has_schema(spec_file: str, schema_name: str) -> bool:
    return schema_name in (_spec(spec_file) / "components" / "schemas")


def schema_errors(
    spec_file: str, schema_name: str, value: Any, *, direction: Direction = "request"
) -> list[str]:
    """Errors of ``value`` against ``components/schemas/<schema_name>`` of ``spec_file``.

    ``direction="request"`` (default) suits bodies the NF sends as an HTTP request, which
    notifications are; use ``"response"`` for a fragment of a response body.
    """
    spec = _spec(spec_file)
    if not has_schema(spec_file, schema_name):
        raise KeyError(f"{spec_file} defines no schema {schema_name!r}")
    schema = spec / "components" / "schemas" / schema_name
    factory = _WRITE_FACTORY if direction == "request" else _READ_FACTORY
    with _lock:
        validator = factory.create(spec, schema).validator
    return [_format(e) for e in sorted(validator.iter_errors(value), key=_error_key)]


def validate_schema(
    spec_file: str, schema_name: str, value: Any, *, direction: Direction = "request"
) -> None:
    """Raise ``AssertionError`` listing every error of ``value`` against a named schema."""
    _raise(
        schema_errors(spec_file, schema_name, value, direction=direction),
        f"value does not conform to {spec_file}#/components/schemas/{schema_name}",
    )


# -- error rendering --------------------------------------------------------------------------


def _raise(errors: Sequence[str], headline: str) -> None:
    if errors:
        raise AssertionError(headline + ":\n" + "\n".join(f"  - {e}" for e in errors))


def _error_key(error: ValidationError) -> tuple[str, str]:
    return (error.json_path, error.message)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _format(error: ValidationError, indent: str = "") -> str:
    line = f"{indent}at {error.json_path}: {_short(error.message)}"
    if not error.context:
        return line
    # anyOf/oneOf: show why each branch failed, a few errors per branch.
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branch = sub.relative_schema_path[0] if sub.relative_schema_path else "?"
        by_branch.setdefault(branch, []).append(sub)
    lines = [line]
    for branch, subs in by_branch.items():
        lines.append(f"{indent}    branch {branch}:")
        lines.extend(
            _format(s, indent + "      ") for s in sorted(subs, key=_error_key)[:_MAX_BRANCH_ERRORS]
        )
        if len(subs) > _MAX_BRANCH_ERRORS:
            lines.append(f"{indent}      ... {len(subs) - _MAX_BRANCH_ERRORS} more")
    return "\n".join(lines)


def _describe(errors: Iterable[Exception]) -> list[str]:
    out: list[str] = []
    for error in errors:
        schema_errs: Sequence[ValidationError] = ()
        chain: list[str] = []
        cause: BaseException | None = error
        while cause is not None:
            schema_errs = getattr(cause, "schema_errors", None) or schema_errs
            text = str(cause)
            if not chain or text not in chain[-1]:
                chain.append(type(cause).__name__ + (f": {_short(text)}" if text else ""))
            cause = cause.__cause__
        if schema_errs:
            out.extend(_format(e) for e in sorted(schema_errs, key=_error_key))
        else:
            out.append(" <- ".join(chain))
    return out
