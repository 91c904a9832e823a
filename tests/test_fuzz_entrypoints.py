"""Fuzz every JSON entry point of the real apps (SBI and OAM, every part from nf.wiring).

For each route accepting POST, PUT or PATCH (found in ``app.url_map``, so new CHF, PCF and
provisioning routes are covered as they appear) random input is sent: JSON of every shape,
3GPP-like keys with wrong types, raw bytes, deep nesting, odd unicode, huge numbers, wrong
content types. The NF must never answer 5xx, never leak a stack trace, and every error must
be a ProblemDetails with a cause. Examples per route are kept small so the whole run stays
within about a minute on two cores.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pymongo import MongoClient
from quart import Quart
from quart.testing.app import TestApp as Lifespan

from nf.clock import FakeClock
from nf.config import Settings
from nf.runtime import Role
from nf.wiring import create_app

WRITE_METHODS = ("POST", "PUT", "PATCH")
TOTAL_EXAMPLES = 900  # shared by the routes of one role
MIN_EXAMPLES, MAX_EXAMPLES = 12, 60

# Keys the 3GPP and provisioning bodies use, so that the fuzz gets past the first checks.
KEYS = [
    "subscriberIdentifier", "supi", "gpsi", "nfConsumerIdentification", "nFName",
    "nodeFunctionality", "invocationTimeStamp", "invocationSequenceNumber", "notifyUri",
    "multipleUnitUsage", "ratingGroup", "requestedUnit", "usedUnitContainer", "totalVolume",
    "uplinkVolume", "downlinkVolume", "time", "serviceSpecificUnits", "triggers",
    "pDUSessionChargingInformation", "chargingId", "pduSessionInformation", "servingNetwork",
    "mcc", "mnc", "sliceInfo", "sst", "sd", "dnn", "pduSessionId", "pduSessionType",
    "ratType", "ueTimeZone", "notificationType", "reauthorizationDetails",
    "quotaManagementIndicator", "ratingIndicator", "localSequenceNumber", "uPFID",
    "qosFlowsUsageReports",
    "policyCounterIds", "smPolicyCtxData", "smPolicyUpdateContextData",
    "repPolicyCtrlReqTriggers",
    "accessType", "subsSessAmbr", "subsDefQos", "ipv4Address", "notificationUri",
    "brand", "brandId", "offerId", "offer", "msisdn", "imsi", "status", "amount", "balance",
    "currency", "units", "validity", "expiry", "bundle", "allowance", "id", "name", "type",
    "network", "plmnId", "quota", "counters", "speed", "reason", "reference", "key",
    "resolution", "note",
]
SAMPLE_IDS = ["imsi-001010000000001", "imsi-999001000000042", "1", "0", "x", "-1",
              "%E2%82%AC", "a" * 200]
CONTENT_TYPES = ["application/json", "application/json", "application/json",
                 "application/merge-patch+json", "application/problem+json", "text/plain",
                 "application/x-www-form-urlencoded", ""]
AUTH = {"x-api-key": "demo-admin-key", "authorization": "Bearer demo-admin-key"}

BOUNDARY_INTS = [2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64, 2**64 - 1, 2**32,
                 2**32 - 1, -1, 0, 10**15, 10**15 + 1, 2**53 + 1]
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
           | st.sampled_from(["", "imsi-001010000000001", "2026-01-01T00:00:00Z", "00101",
                              "\u202e\u0000\ufeff", "🙂" * 5, "9" * 30]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=12), inner, max_size=8),
    max_leaves=30,
)


def _encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["object", "object", "object", "any", "bytes", "nesting",
                                 "numbers", "unicode", "truncated", "boundary", "nul-key",
                                 "wide", "deep-valid"]))
    if kind == "object":
        return _encode(draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10)),
                       draw(st.booleans()))
    if kind == "any":
        return _encode(draw(json_values), draw(st.booleans()))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "nesting":
        n = draw(st.integers(20, 4000))
        opener = draw(st.sampled_from(['[', '{"a":', '{"multipleUnitUsage":[']))
        closer = {"[": "]", '{"a":': "}", '{"multipleUnitUsage":[': "]}"}[opener]
        return (opener * n + "1" + closer * n).encode()
    if kind == "numbers":
        key = draw(st.sampled_from(KEYS))
        num = draw(st.sampled_from(["1e999", "-1e999", "1" * 5000, "NaN", "Infinity",
                                    "-0", "1.7976931348623157e308", "123456789" * 40]))
        return f'{{"{key}": {num}}}'.encode()
    if kind == "boundary":
        # Integers at and just past every storage bound, anywhere in a plausible body.
        obj = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))
        path = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4))
        leaf: Any = draw(st.sampled_from(BOUNDARY_INTS))
        for k in reversed(path[1:]):
            leaf = draw(st.sampled_from([{k: leaf}, [{k: leaf}], [leaf]]))
        obj[path[0]] = leaf
        return _encode(obj, True)
    if kind == "nul-key":
        obj = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))
        key = draw(st.sampled_from(KEYS)) + "\u0000" + draw(st.text("ab$.", max_size=3))
        inner = json.dumps(obj)[1:-1]
        return ("{" + f'"{key}": 1' + (", " + inner if inner else "") + "}").encode()
    if kind == "wide":
        n = draw(st.integers(500, 4000))
        if draw(st.booleans()):
            return _encode({f"k{i}": i for i in range(n)}, True)
        return _encode({"multipleUnitUsage": [{"ratingGroup": i} for i in range(n // 4)]},
                       True)
    if kind == "deep-valid":
        n = draw(st.integers(25, 40))
        return ('{"supi": "imsi-001010000000001", "x": ' + '{"a": ' * n + "1" + "}" * n
                + "}").encode()
    if kind == "unicode":
        key = draw(st.sampled_from(KEYS))
        s = draw(st.sampled_from(["\\ud800", "\\udfff\\ud800", "\\u0000", "\\ud83d\\ude00"]))
        return f'{{"{key}": "{s}", "{s}": 1}}'.encode()
    full = _encode(draw(st.dictionaries(st.sampled_from(KEYS), json_values, min_size=1,
                                        max_size=5)), True)
    return full[: draw(st.integers(0, max(0, len(full) - 1)))]


def _path(app: Quart, endpoint: str, method: str, arguments: dict[str, str]) -> str:
    adapter = app.url_map.bind("localhost")
    return str(adapter.build(endpoint, arguments, method=method))


def _arguments(rule: Any, choice: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in rule.arguments:
        conv = type(rule._converters[name]).__name__
        if conv == "IntegerConverter":
            out[name] = 1
        elif conv == "FloatConverter":
            out[name] = 1.0
        elif conv == "UUIDConverter":
            out[name] = "00000000-0000-4000-8000-000000000000"
        else:
            out[name] = choice
    return out


def write_routes(app: Quart) -> list[tuple[Any, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) & set(WRITE_METHODS)):
            routes.append((rule, method))
    return routes


def check(status: int, headers: Any, body: bytes, what: str) -> None:
    text = body.decode("utf-8", "replace")
    assert status < 500, f"{what}: {status} {text[:500]}"
    assert 200 <= status < 300 or 400 <= status < 500, f"{what}: {status}"
    assert "Traceback" not in text and 'File "' not in text, f"{what}: {text[:500]}"
    if status >= 400:
        assert headers["content-type"] == "application/problem+json", f"{what}: {headers}"
        problem = json.loads(body)
        assert problem["status"] == status and problem["cause"], f"{what}: {problem}"


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.mark.parametrize("role", ["sbi", "oam"])
def test_json_entry_points_never_fail(role: Role, settings: Settings,
                                      runner: asyncio.Runner) -> None:
    app = create_app(settings, role=role, clock=FakeClock())
    lifespan = Lifespan(app, startup_timeout=60, shutdown_timeout=60)
    runner.run(lifespan.startup())
    client = app.test_client()
    covered: list[str] = []
    try:
        routes = write_routes(app)
        per_route = max(MIN_EXAMPLES, min(MAX_EXAMPLES, TOTAL_EXAMPLES // max(1, len(routes))))

        async def send(path: str, method: str, body: bytes, ctype: str) -> None:
            headers = dict(AUTH)
            if ctype:
                headers["content-type"] = ctype
            r = await client.open(path, method=method, data=body, headers=headers)
            check(r.status_code, r.headers, await r.get_data(), f"{method} {path}")

        def fuzzer(rule: Any, method: str) -> Any:
            @hsettings(max_examples=per_route, deadline=None, database=None,
                       suppress_health_check=list(HealthCheck))
            @given(body=bodies(), ctype=st.sampled_from(CONTENT_TYPES),
                   choice=st.sampled_from(SAMPLE_IDS))
            def fuzz_route(body: bytes, ctype: str, choice: str) -> None:
                path = _path(app, rule.endpoint, method, _arguments(rule, choice))
                runner.run(send(path, method, body, ctype))

            return fuzz_route

        for rule, method in routes:
            fuzzer(rule, method)()
            covered.append(f"{method} {rule.rule}")
        # Paths no route takes, and a method no route allows, are problems too.
        runner.run(send("/no/such/entry/point", "POST", b'{"a": 1}', "application/json"))
        runner.run(send("/healthz", "POST", b"{}", "application/json"))
    finally:
        runner.run(lifespan.shutdown())
        with MongoClient(settings.mongodb_uri) as c:
            c.drop_database(settings.mongodb_database)
    print(f"{role}: fuzzed {len(covered)} entry points: {covered}")
