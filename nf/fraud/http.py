"""Fraud cases on the OAM port, brand-scoped like provisioning (``X-API-Key``).

``GET /provisioning/v1/fraud/cases`` (filters ``status``, ``rule``, ``supi``, ``from``,
``to``, ``limit``), ``GET …/cases/{id}`` with the evidence and the audit trail, and
``POST …/cases/{id}/resolve`` (``confirmed`` or ``false_positive``). A brand key sees only
its brand's cases (another brand's case is a 404, as if missing). Who resolved is recorded
as the key's fingerprint, its brand and the ``X-Operator`` header if sent.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request

from nf.clock import utc
from nf.errors import BadRequest, InvalidParam, NotFound
from nf.fraud.cases import case_json
from nf.fraud.service import FraudService
from nf.runtime import Runtime
from nf.sbi.body import read_model
from nf.sbi.responses import json_response
from nf.security.apikeys import ADMIN, api_scope
from nf.settings.fraud import RULES

BASE = "/provisioning/v1/fraud/cases"
STATUSES = ("open", "confirmed", "false_positive")
_SUPI = re.compile(r"^imsi-[0-9]{5,15}$")
_OPERATOR = re.compile(r"^[\w.@ -]{1,64}$")
LIMIT_MAX = 1000


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    resolution: Literal["confirmed", "false_positive"]
    note: str | None = Field(None, max_length=1000)


def _time(name: str, raw: str, bad: list[InvalidParam]) -> datetime | None:
    try:
        return utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        bad.append(InvalidParam(param=name, reason="not an ISO 8601 date-time"))
        return None


def fraud_blueprint(rt: Runtime, svc: FraudService) -> Blueprint:
    bp = Blueprint("fraud", __name__)
    max_body = rt.settings.server.max_body_bytes
    keys = rt.api_keys

    def who(scope: str) -> dict[str, Any]:
        key = request.headers.get("X-API-Key", "")
        op = request.headers.get("X-Operator")
        return {"key": hashlib.sha256(key.encode()).hexdigest()[:12], "brand": scope,
                "operator": op if op and _OPERATOR.match(op) else None}

    async def owned(case_id: str) -> tuple[str, dict[str, Any]]:
        scope = api_scope(keys)
        c = await svc.store.case(case_id) if len(case_id) <= 64 else None
        if c is None or scope not in (ADMIN, c.get("brand")):
            raise NotFound(f"no fraud case {case_id}", cause="CASE_NOT_FOUND")
        return scope, c

    @bp.get(BASE)
    async def list_cases() -> Response:
        scope = api_scope(keys)
        a = request.args
        bad: list[InvalidParam] = []
        q: dict[str, Any] = {}
        if scope != ADMIN:
            q["brand"] = scope
        elif a.get("brand"):
            q["brand"] = a["brand"]
        if (st := a.get("status")) is not None:
            if st not in STATUSES:
                bad.append(InvalidParam(param="status", reason=f"one of {list(STATUSES)}"))
            q["status"] = st
        if (rule := a.get("rule")) is not None:
            if rule not in RULES:
                bad.append(InvalidParam(param="rule", reason=f"one of {list(RULES)}"))
            q["rule"] = rule
        if (supi := a.get("supi")) is not None:
            if not _SUPI.match(supi):
                bad.append(InvalidParam(param="supi", reason="imsi-<5 to 15 digits>"))
            q["supi"] = supi
        span: dict[str, Any] = {}
        for name, op in (("from", "$gte"), ("to", "$lt")):
            if (raw := a.get(name)) is not None:
                t = _time(name, raw, bad)
                if t is not None:
                    span[op] = t
        if span:
            q["opened_at"] = span
        limit = 100
        if (raw := a.get("limit")) is not None:
            if not raw.isdigit() or not 1 <= int(raw) <= LIMIT_MAX:
                bad.append(InvalidParam(param="limit", reason=f"1 to {LIMIT_MAX}"))
            else:
                limit = int(raw)
        if bad:
            raise BadRequest("invalid query parameters", invalid_params=bad,
                             cause="INVALID_QUERY_PARAM")
        docs = await svc.store.find_cases(q, limit)
        return json_response({"cases": [case_json(d, evidence=False) for d in docs],
                              "count": len(docs), "limit": limit})

    @bp.get(f"{BASE}/<case_id>")
    async def read_case(case_id: str) -> Response:
        _, c = await owned(case_id)
        return json_response(case_json(c, evidence=True))

    @bp.post(f"{BASE}/<case_id>/resolve")
    async def resolve(case_id: str) -> Response:
        api_scope(keys)  # an unknown key is refused before the body is read
        body = await read_model(request, ResolveIn, max_body)
        scope, _ = await owned(case_id)
        c = await svc.resolve(case_id, body.resolution, who(scope), body.note)
        return json_response(case_json(c, evidence=True))

    return bp
