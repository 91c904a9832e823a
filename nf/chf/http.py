"""The CHF's HTTP handlers (SBI port): Nchf_ConvergedCharging v3 create, update, release.

Handlers only read the body into the wire model, call the service and render; every error
is an ``NfError`` rendered once by the app as ProblemDetails.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from nf.chf.service import ChargingService
from nf.chf.wire import ChargingDataRequest
from nf.config import Settings
from nf.sbi.body import read_model
from nf.sbi.responses import api_root, json_response, no_content

API_ROOT = "/nchf-convergedcharging/v3"


def _json(status: int, body: dict[str, Any] | None) -> Response:
    if body is None:
        return no_content()
    # Refusals carry a ChargingDataResponse with invocationResult as problem+json (TS 32.291).
    ctype = "application/json" if status < 400 else "application/problem+json"
    return json_response(body, status, content_type=ctype)


def chf_blueprint(settings: Settings, service: ChargingService) -> Blueprint:
    bp = Blueprint("chf", __name__, url_prefix=API_ROOT)
    max_bytes = settings.server.max_body_bytes

    def location(ref: str) -> str:
        return f"{api_root(settings)}{API_ROOT}/chargingdata/{ref}"

    @bp.post("/chargingdata")
    async def create() -> Response:
        req = await read_model(request, ChargingDataRequest, max_bytes)
        status, body, ref = await service.create(req)
        resp = _json(status, body)
        if status == 201:
            resp.headers["Location"] = location(ref)
        return resp

    @bp.post("/chargingdata/<ref>/update")
    async def update(ref: str) -> Response:
        req = await read_model(request, ChargingDataRequest, max_bytes)
        status, body = await service.update(ref, req)
        return _json(status, body)

    @bp.post("/chargingdata/<ref>/release")
    async def release(ref: str) -> Response:
        req = await read_model(request, ChargingDataRequest, max_bytes)
        status, body = await service.release(ref, req)
        return _json(status, body)

    return bp
