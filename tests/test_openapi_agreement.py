"""Our OpenAPI documents (openapi/*.yaml) agree with the 3GPP documents they implement.

Convention: a document that implements a 3GPP API says which one with a top-level
``x-3gpp-spec: <file name in shared/3gpp/Rel-17>`` (``info.x-3gpp-spec`` is accepted
too). For such a document:

* every (path, method) we document exists in the 3GPP document (server prefix included:
  ours may put ``/nchf-convergedcharging/v3`` in ``servers`` or in each path; parameter
  names inside ``{}`` do not matter);
* request bodies and responses use media types and statuses 3GPP defines, and every
  schema we reference by name from an operation exists in the 3GPP document or the files
  it references;
* every property we declare exists in 3GPP with a compatible type (recursively, through
  arrays, maps and nested objects; enum values must be 3GPP's), and every property 3GPP
  marks required is required in ours. Where 3GPP offers ``oneOf``/``anyOf``, ours must
  agree with at least one branch. An object schema of ours that declares no properties is
  opaque: only its type is compared;
* every schema in our ``components/schemas`` that has a 3GPP namesake is compared to it,
  which covers callback and notification bodies.

Every document in openapi/ must also be a valid OpenAPI document. The checker is tested
on in-test documents that disagree on purpose, so it runs even before openapi/ has any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi

from tests.conformance import SPEC_DIR, read_yaml

ROOT = Path(__file__).resolve().parents[1]
OPENAPI_DIR = ROOT / "openapi"
SPEC_KEY = "x-3gpp-spec"
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
_SBI_PREFIX = re.compile(r"/n(chf|pcf)-[a-z-]+/v\d+")


# -- a tiny resolver over YAML files ----------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A schema (or any OpenAPI object) and the file its relative ``$ref``s resolve against."""

    file: Path
    value: Any
    name: str | None = None  # the components/schemas name it was reached through

    def child(self, *keys: str) -> Node | None:
        value = self.value
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return Node(self.file, value)


def _load(file: Path) -> Any:
    return read_yaml(file.resolve())


def resolve(node: Node) -> Node:
    """Follow ``$ref`` (local or relative-file) until a concrete object."""
    seen = 0
    while isinstance(node.value, dict) and "$ref" in node.value:
        seen += 1
        if seen > 50:
            raise ValueError(f"$ref loop at {node.file}")
        target, _, pointer = str(node.value["$ref"]).partition("#")
        file = (node.file.parent / target).resolve() if target else node.file
        value = _load(file)
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/") if p]
        for part in parts:
            value = value[part]
        name = parts[2] if parts[:2] == ["components", "schemas"] and len(parts) == 3 else None
        node = Node(file, value, name or node.name)
    return node


def _schema_names(file: Path) -> dict[str, Node]:
    """Every components/schemas entry of ``file`` and of the files it references."""
    out: dict[str, Node] = {}
    todo, done = [file.resolve()], set()
    while todo:
        current = todo.pop()
        if current in done or not current.is_file():
            continue
        done.add(current)
        doc = _load(current)
        for name, schema in (doc.get("components", {}).get("schemas", {}) or {}).items():
            out.setdefault(name, Node(current, schema, name))
        todo.extend((current.parent / ref).resolve() for ref in _file_refs(doc))
    return out


def _file_refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            yield ref.partition("#")[0]
        for item in value.values():
            yield from _file_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _file_refs(item)


# -- what a schema allows ---------------------------------------------------------------------


def kinds(node: Node, depth: int = 0) -> frozenset[str] | None:
    """The JSON types a schema allows; ``None`` when it does not constrain the type."""
    s = resolve(node).value
    if not isinstance(s, dict) or depth > 20:
        return None
    found: set[str] | None
    if "type" in s:
        found = {s["type"]}
        if s.get("nullable") is True:
            found.add("null")
    elif "enum" in s:
        found = {_json_type(v) for v in s["enum"]}
    elif "anyOf" in s or "oneOf" in s:
        found = set()
        for branch in s.get("anyOf", []) + s.get("oneOf", []):
            k = kinds(Node(resolve(node).file, branch), depth + 1)
            if k is None:
                return None
            found |= k
    elif "allOf" in s:
        found = None
        for branch in s["allOf"]:
            k = kinds(Node(resolve(node).file, branch), depth + 1)
            if k is not None:
                found = set(k) if found is None else found & k
    elif "properties" in s or "additionalProperties" in s:
        found = {"object"}
    else:
        found = None
    return None if found is None else frozenset(found)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _compatible(ours: frozenset[str] | None, theirs: frozenset[str] | None) -> bool:
    if ours is None or theirs is None:
        return True
    return all(k in theirs or (k == "integer" and "number" in theirs) for k in ours)


def _enum_values(node: Node, depth: int = 0) -> set[Any] | None:
    """All enum values a schema lists, or ``None`` when it lists none."""
    node = resolve(node)
    s = node.value
    if not isinstance(s, dict) or depth > 20:
        return None
    if "enum" in s:
        return set(s["enum"])
    values: set[Any] | None = None
    for branch in s.get("anyOf", []) + s.get("oneOf", []) + s.get("allOf", []):
        sub = _enum_values(Node(node.file, branch), depth + 1)
        if sub is not None:
            values = (values or set()) | sub
    return values


def _flatten(node: Node, depth: int = 0) -> tuple[dict[str, Node], set[str]]:
    """Properties and required names of an object schema, ``allOf`` merged."""
    node = resolve(node)
    s = node.value
    props: dict[str, Node] = {}
    required: set[str] = set()
    if not isinstance(s, dict) or depth > 20:
        return props, required
    for name, sub in (s.get("properties") or {}).items():
        props[name] = Node(node.file, sub)
    required |= set(s.get("required") or [])
    for branch in s.get("allOf", []):
        p, r = _flatten(Node(node.file, branch), depth + 1)
        props.update(p)
        required |= r
    return props, required


def _branches(node: Node) -> list[Node] | None:
    s = node.value
    if isinstance(s, dict) and ("oneOf" in s or "anyOf" in s):
        return [Node(node.file, b) for b in s.get("oneOf", []) + s.get("anyOf", [])]
    return None


# -- comparing two schemas --------------------------------------------------------------------


def compare(ours: Node, theirs: Node, where: str, seen: set[tuple[int, int]]) -> list[str]:
    """Every way schema ``ours`` disagrees with 3GPP schema ``theirs``."""
    o, t = resolve(ours), resolve(theirs)
    if isinstance(ours.value, dict) and "$ref" in ours.value and o.name:
        where = o.name  # a named schema of ours: report it by name wherever it is used
    key = (id(o.value), id(t.value))
    if key in seen:
        return []
    seen.add(key)
    our_branches, their_branches = _branches(o), _branches(t)
    if our_branches is not None:
        return [e for i, b in enumerate(our_branches)
                for e in compare(b, t, f"{where}<branch {i}>", seen)]
    # Enum values must be 3GPP's, also for extensible enumerations (anyOf [enum, string]).
    our_enum, their_enum = _enum_values(o), _enum_values(t)
    if our_enum is not None and their_enum is not None and not our_enum <= their_enum:
        extra = sorted(map(str, our_enum - their_enum))
        return [f"{where}: enum values {extra} are not 3GPP values"]
    if their_branches is not None:
        results = [compare(o, b, where, set(seen)) for b in their_branches]
        if any(not r for r in results):
            return []
        best = min(results, key=len)
        return [f"{where}: matches no branch of the 3GPP oneOf/anyOf; closest: {best[0]}"]

    ko, kt = kinds(o), kinds(t)
    if not _compatible(ko, kt):
        return [f"{where}: type {sorted(ko or [])} is not compatible with 3GPP "
                f"{sorted(kt or [])}"]
    errors: list[str] = []
    s_o = o.value if isinstance(o.value, dict) else {}
    s_t = t.value if isinstance(t.value, dict) else {}
    if ko is not None and "object" in ko:
        our_props, our_required = _flatten(o)
        their_props, their_required = _flatten(t)
        if our_props:
            for name, sub in our_props.items():
                if name not in their_props:
                    errors.append(f"{where}: property {name!r} is not defined by 3GPP"
                                  f" {t.name or ''}".rstrip())
                else:
                    errors.extend(compare(sub, their_props[name], f"{where}.{name}", seen))
            errors.extend(
                f"{where}: 3GPP requires {name!r} but ours does not"
                for name in sorted(their_required - our_required)
            )
        if isinstance(s_o.get("additionalProperties"), dict) and isinstance(
            s_t.get("additionalProperties"), dict
        ):
            errors.extend(compare(Node(o.file, s_o["additionalProperties"]),
                                  Node(t.file, s_t["additionalProperties"]),
                                  f"{where}{{*}}", seen))
    if ko is not None and "array" in ko and "items" in s_o and "items" in s_t:
        errors.extend(compare(Node(o.file, s_o["items"]), Node(t.file, s_t["items"]),
                              f"{where}[]", seen))
    return errors


# -- comparing two documents ------------------------------------------------------------------


def _prefix(doc: Any) -> str:
    servers = doc.get("servers") or []
    url = str(servers[0].get("url", "")) if servers else ""
    url = url.replace("{apiRoot}", "")
    return urlsplit(url).path.rstrip("/") if url else ""


def _normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _operations(file: Path) -> dict[tuple[str, str], tuple[str, Node]]:
    doc = _load(file)
    prefix = _prefix(doc)
    out: dict[tuple[str, str], tuple[str, Node]] = {}
    for path, item in (doc.get("paths") or {}).items():
        item_node = resolve(Node(file, item))
        for method in METHODS:
            op = item_node.child(method)
            if op is not None:
                out[(_normalise(prefix + path), method)] = (prefix + path, op)
    return out


def _content(node: Node | None) -> dict[str, Node]:
    """media type -> schema node of a requestBody or response object."""
    if node is None:
        return {}
    node = resolve(node)
    content = node.child("content")
    if content is None or not isinstance(content.value, dict):
        return {}
    out = {}
    for media, obj in content.value.items():
        schema = Node(node.file, obj).child("schema") if isinstance(obj, dict) else None
        if schema is not None:
            out[media] = schema
    return out


def disagreements(our_file: Path, spec_dir: Path = SPEC_DIR) -> list[str]:
    """Every way the document ``our_file`` disagrees with the 3GPP document it names."""
    spec_name = spec_of(_load(our_file))
    if not spec_name:
        return [f"{our_file.name}: no {SPEC_KEY}"]
    their_file = (spec_dir / str(spec_name)).resolve()
    if not their_file.is_file():
        return [f"{our_file.name}: {SPEC_KEY} names {spec_name}, not found in {spec_dir}"]
    their_ops = _operations(their_file)
    their_names = _schema_names(their_file)
    errors: list[str] = []
    seen: set[tuple[int, int]] = set()

    def check_named(schema: Node, where: str) -> None:
        name = resolve(schema).name
        if name is not None and name not in their_names:
            errors.append(f"{where}: schema {name!r} is not defined in {spec_name} "
                          "or the files it references")

    for key, (path, op) in sorted(_operations(our_file).items()):
        label = f"{key[1].upper()} {path}"
        if key not in their_ops:
            errors.append(f"{label}: not defined by {spec_name}")
            continue
        their_op = their_ops[key][1]
        theirs_body = _content(their_op.child("requestBody"))
        for media, schema in _content(op.child("requestBody")).items():
            where = f"{label} request {media}"
            check_named(schema, where)
            if media not in theirs_body:
                errors.append(f"{where}: 3GPP has no such request media type "
                              f"(has {sorted(theirs_body)})")
            else:
                errors.extend(compare(schema, theirs_body[media], where, seen))
        their_responses = their_op.child("responses")
        for status, response in ((op.child("responses") or Node(our_file, {})).value).items():
            where = f"{label} -> {status}"
            their_resp = None
            if their_responses is not None:
                their_resp = (their_responses.child(str(status))
                              or their_responses.child(f"{str(status)[0]}XX")
                              or their_responses.child("default"))
            if their_resp is None:
                errors.append(f"{where}: 3GPP defines no such response")
                continue
            theirs_content = _content(their_resp)
            for media, schema in _content(Node(op.file, response)).items():
                check_named(schema, f"{where} {media}")
                if media not in theirs_content:
                    errors.append(f"{where}: 3GPP has no {media} body here "
                                  f"(has {sorted(theirs_content)})")
                else:
                    errors.extend(compare(schema, theirs_content[media],
                                          f"{where} {media}", seen))

    for name, schema in sorted(_schema_names(our_file).items()):
        if schema.file == our_file.resolve() and name in their_names:
            errors.extend(compare(schema, their_names[name], name, seen))
    errors.extend(security_disagreements(_load(our_file), _load(their_file), spec_name))
    return errors


def _security(doc: Any) -> tuple[Any, Any]:
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    return doc.get("security"), schemes


def security_disagreements(ours: Any, theirs: Any, spec_name: str) -> list[str]:
    """Where 3GPP declares security (OAuth2 client credentials with the service's scope),
    ours must declare the same requirement and schemes, so generated clients send tokens."""
    their_req, their_schemes = _security(theirs)
    our_req, our_schemes = _security(ours)
    if not their_req and not their_schemes:
        return []
    errors = []
    if our_req != their_req:
        errors.append(f"security: {our_req!r} differs from {spec_name}'s {their_req!r}")
    for name, scheme in their_schemes.items():
        mine = our_schemes.get(name)
        if mine is None:
            errors.append(f"securitySchemes: {name} missing (3GPP declares it)")
            continue
        for key in ("type", "flows"):
            if mine.get(key) != scheme.get(key):
                errors.append(f"securitySchemes.{name}.{key}: {mine.get(key)!r} differs "
                              f"from {spec_name}'s {scheme.get(key)!r}")
    return errors


# -- the documents in openapi/ ----------------------------------------------------------------


def spec_of(doc: Any) -> str | None:
    """The 3GPP file a document implements: top-level ``x-3gpp-spec`` or in ``info``."""
    if not isinstance(doc, dict):
        return None
    name = doc.get(SPEC_KEY) or (doc.get("info") or {}).get(SPEC_KEY)
    return str(name) if name else None


def _our_documents() -> list[Path]:
    return sorted(p for p in OPENAPI_DIR.glob("*.y*ml") if p.is_file())


def _implementing() -> list[Path]:
    return [p for p in _our_documents() if spec_of(_load(p))]


# A document that agrees with TS 29.594, used when openapi/ has none with x-3gpp-spec yet,
# so the agreement test always exercises the checker on a real 3GPP document.
AGREEING_SAMPLE = {
    "openapi": "3.0.0",
    "info": {"title": "sample", "version": "1.0.0"},
    SPEC_KEY: "TS29594_Nchf_SpendingLimitControl.yaml",
    "servers": [{"url": "{apiRoot}/nchf-spendinglimitcontrol/v1",
                 "variables": {"apiRoot": {"default": "http://localhost"}}}],
    "paths": {
        "/subscriptions": {"post": {
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/SpendingLimitContext"}}}},
            "responses": {
                "201": {"description": "Created", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/SpendingLimitStatus"}}}},
                "400": {"description": "Bad request", "content": {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/ProblemDetails"}}}},
            },
        }},
        "/subscriptions/{id}": {"delete": {
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"204": {"description": "Deleted"}},
        }},
    },
    "components": {"schemas": {
        "SpendingLimitContext": {"type": "object", "properties": {
            "supi": {"type": "string"},
            "policyCounterIds": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "notifUri": {"type": "string"},
        }},
        "SpendingLimitStatus": {"type": "object", "properties": {
            "supi": {"type": "string"},
            "statusInfos": {"type": "object", "additionalProperties": {
                "$ref": "#/components/schemas/PolicyCounterInfo"}},
        }},
        "PolicyCounterInfo": {"type": "object", "required": ["policyCounterId", "currentStatus"],
                              "properties": {"policyCounterId": {"type": "string"},
                                             "currentStatus": {"type": "string"}}},
        "ProblemDetails": {"type": "object", "properties": {
            "status": {"type": "integer"}, "cause": {"type": "string"},
            "detail": {"type": "string"}}},
    }, "securitySchemes": {"oAuth2ClientCredentials": {
        "type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": "{nrfApiRoot}/oauth2/token",
            "scopes": {"nchf-spendinglimitcontrol":
                       "Access to the Nchf_SpendingLimitControl API"}}}}}},
    "security": [{}, {"oAuth2ClientCredentials": ["nchf-spendinglimitcontrol"]}],
}


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _agreement_cases() -> list[Any]:
    found = _implementing()
    if found:
        return [pytest.param(p, id=p.name) for p in found]
    return [pytest.param(None, id="no-x-3gpp-spec-yet:built-in-sample")]


@pytest.mark.parametrize("document", _agreement_cases())
def test_document_agrees_with_3gpp(document: Path | None, tmp_path: Path) -> None:
    path = document or _write(tmp_path, "sample.yaml", AGREEING_SAMPLE)
    validate_openapi(_load(path), base_uri=path.resolve().as_uri())
    errors = disagreements(path)
    assert not errors, f"{path.name} disagrees with {spec_of(_load(path))}:\n" + "\n".join(
        f"  - {e}" for e in errors)


@pytest.mark.parametrize("document", [pytest.param(p, id=p.name) for p in _our_documents()]
                         or [pytest.param(None, id="openapi-dir-empty")])
def test_every_document_is_valid_openapi_and_3gpp_apis_name_their_spec(
    document: Path | None,
) -> None:
    if document is None:
        assert not _our_documents()
        return
    doc = _load(document)
    validate_openapi(doc, base_uri=document.resolve().as_uri())
    serves_3gpp = any(_SBI_PREFIX.search(_prefix(doc) + p) for p in doc.get("paths") or {})
    assert not serves_3gpp or spec_of(doc), (
        f"{document.name} serves a 3GPP API; add top-level '{SPEC_KEY}: <3GPP file name>'")


# -- the checker itself -----------------------------------------------------------------------


def _disagreeing_sample() -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(AGREEING_SAMPLE))
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    paths["/subscriptions/{id}"]["get"] = {"responses": {"200": {"description": "x"}}}
    paths["/subscriptions"]["post"]["responses"]["201"]["content"]["application/json"][
        "schema"] = {"$ref": "#/components/schemas/MadeUpStatus"}
    paths["/subscriptions"]["post"]["responses"]["299"] = {
        "description": "not 3GPP", "content": {"text/plain": {"schema": {"type": "string"}}}}
    schemas["MadeUpStatus"] = {"type": "object", "properties": {"supi": {"type": "string"}}}
    schemas["SpendingLimitContext"]["properties"]["supi"] = {"type": "integer"}
    schemas["SpendingLimitContext"]["properties"]["loyaltyPoints"] = {"type": "integer"}
    schemas["PolicyCounterInfo"]["required"] = ["policyCounterId"]
    schemas["PolicyCounterInfo"]["properties"]["currentStatus"] = {
        "type": "string", "enum": ["valid", "bogus"]}
    schemas["ProblemDetails"]["properties"]["status"] = {"type": "string"}
    return doc


def test_checker_reports_every_planted_disagreement(tmp_path: Path) -> None:
    errors = "\n".join(disagreements(_write(tmp_path, "bad.yaml", _disagreeing_sample())))
    expected = [
        "GET /nchf-spendinglimitcontrol/v1/subscriptions/{id}: not defined by",
        "schema 'MadeUpStatus' is not defined in TS29594",
        "-> 299: 3GPP has no text/plain body",
        "SpendingLimitContext.supi: type ['integer'] is not compatible with 3GPP ['string']",
        "property 'loyaltyPoints' is not defined by 3GPP",
        "PolicyCounterInfo: 3GPP requires 'currentStatus' but ours does not",
        "ProblemDetails.status: type ['string'] is not compatible with 3GPP ['integer']",
    ]
    missing = [e for e in expected if e not in errors]
    assert not missing, f"not reported: {missing}\nreported:\n{errors}"
    # 3GPP leaves currentStatus a free string: our enum there is a narrowing, not an error.
    assert "currentStatus: enum" not in errors
    assert len(errors.splitlines()) == len(expected), errors


def test_checker_follows_nested_refs_into_3gpp_common_data(tmp_path: Path) -> None:
    doc = yaml.safe_load(yaml.safe_dump(AGREEING_SAMPLE))
    doc[SPEC_KEY] = "TS29512_Npcf_SMPolicyControl.yaml"
    doc["servers"][0]["url"] = "{apiRoot}/npcf-smpolicycontrol/v1"
    body = {"type": "object", "required": ["supi", "pduSessionId", "pduSessionType", "dnn",
                                           "notificationUri", "sliceInfo"],
            "properties": {"supi": {"type": "string"}, "pduSessionId": {"type": "integer"},
                           "pduSessionType": {"type": "string", "enum": ["IPV4", "IPV5"]},
                           "dnn": {"type": "string"}, "notificationUri": {"type": "string"},
                           "sliceInfo": {"type": "object", "properties": {
                               "sst": {"type": "string"}}}}}
    doc["paths"] = {"/sm-policies": {"post": {
        "requestBody": {"content": {"application/json": {"schema": body}}},
        "responses": {"204": {"description": "x"}}}}}
    doc["components"] = {"securitySchemes": {"oAuth2ClientCredentials": {
        "type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": "{nrfApiRoot}/oauth2/token",
            "scopes": {"npcf-smpolicycontrol": "Access to the Npcf_SMPolicyControl API"}}}}}}
    doc["security"] = [{}, {"oAuth2ClientCredentials": ["npcf-smpolicycontrol"]}]
    errors = disagreements(_write(tmp_path, "pcf.yaml", doc))
    # Snssai.sst is an integer in TS29571_CommonData.yaml; Snssai requires 'sst'.
    assert any("sliceInfo.sst: type ['string']" in e for e in errors), errors
    assert any("sliceInfo: 3GPP requires 'sst'" in e for e in errors), errors
    assert any("pduSessionType: enum values ['IPV5'] are not 3GPP values" in e
               for e in errors), errors
    assert len(errors) == 3, errors  # nothing else: the agreeing parts are not reported
    body["properties"]["pduSessionType"]["enum"] = ["IPV4", "IPV6"]
    body["properties"]["sliceInfo"] = {"type": "object", "required": ["sst"], "properties": {
        "sst": {"type": "integer"}, "sd": {"type": "string"}}}
    assert disagreements(_write(tmp_path, "pcf-fixed.yaml", doc)) == []


def test_checker_reports_missing_or_different_security(tmp_path: Path) -> None:
    doc = yaml.safe_load(yaml.safe_dump(AGREEING_SAMPLE))
    assert security_disagreements(doc, _load(SPEC_DIR / str(spec_of(doc))), "TS") == []
    del doc["security"], doc["components"]["securitySchemes"]
    theirs = {"security": [{}, {"oAuth2ClientCredentials": ["nchf-spendinglimitcontrol"]}],
              "components": {"securitySchemes": {"oAuth2ClientCredentials": {
                  "type": "oauth2", "flows": {"clientCredentials": {
                      "tokenUrl": "{nrfApiRoot}/oauth2/token",
                      "scopes": {"nchf-spendinglimitcontrol": "x"}}}}}}}
    errors = security_disagreements(doc, theirs, "TS")
    assert any(e.startswith("security:") for e in errors)
    assert any("oAuth2ClientCredentials missing" in e for e in errors)
    doc["security"] = theirs["security"]
    doc["components"]["securitySchemes"] = {"oAuth2ClientCredentials": {
        "type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": "{nrfApiRoot}/oauth2/token", "scopes": {"other-scope": "x"}}}}}
    assert [e for e in security_disagreements(doc, theirs, "TS") if "flows" in e]


def test_checker_needs_a_known_3gpp_document(tmp_path: Path) -> None:
    doc = dict(AGREEING_SAMPLE, **{SPEC_KEY: "TS00000_Nothing.yaml"})
    assert "not found" in disagreements(_write(tmp_path, "x.yaml", doc))[0]
    del doc[SPEC_KEY]
    assert disagreements(_write(tmp_path, "y.yaml", doc)) == [f"y.yaml: no {SPEC_KEY}"]
