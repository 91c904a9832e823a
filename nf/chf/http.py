"""The CHF's HTTP handlers (SBI port): Nchf_ConvergedCharging v3 create, update, release.

Handlers only read the body into the wire model, call the service and render; every error
is an ``NfError`` rendered once by the app as ProblemDetails.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from nf.chf.service import ChargingService
from nf.chf.wire import ChargingDataRequest, PlmnId
from nf.config import Settings
from nf.sbi.body import read_model
from nf.sbi.responses import api_root, json_response, no_content
from nf.security import caller as callers

API_ROOT = "/nchf-convergedcharging/v3"


def _json(status: int, body: dict[str, Any] | None) -> Response:
    if body is None:
        return no_content()
    # Refusals carry a ChargingDataResponse with invocationResult as problem+json (TS 32.291).
    ctype = "application/json" if status < 400 else "application/problem+json"
    return json_response(body, status, content_type=ctype)


def bind_caller(settings: Settings, req: ChargingDataRequest) -> ChargingDataRequest:
    """With an authenticated caller: refuse a body that speaks for another host network,
    and name the caller's PLMN as the consumer's when the body does not (the CHF picks the
    host network's charging terms from it)."""
    caller = callers.current()
    callers.check_plmns(
        settings, caller,
        consumer=("nfConsumerIdentification/nFPLMNID", req.consumer_plmn),
        others=[("pDUSessionChargingInformation/pduSessionInformation/servingCNPlmnId",
                 req.serving_plmn)])
    if caller is not None and req.consumer_plmn is None:
        ident = req.nfConsumerIdentification.model_copy(
            update={"nFPLMNID": PlmnId(mcc=caller.plmn[:3], mnc=caller.plmn[3:])})
        req = req.model_copy(update={"nfConsumerIdentification": ident})
    callers.check_notify_uri(
        callers.network_of(settings, caller, (req.consumer_plmn, req.serving_plmn)),
        "notifyUri", req.notifyUri)
    return req


def chf_blueprint(settings: Settings, service: ChargingService) -> Blueprint:
    bp = Blueprint("chf", __name__, url_prefix=API_ROOT)
    max_bytes = settings.server.max_body_bytes

    async def _check_owner(ref: str) -> None:
        caller = callers.current()
        if caller is not None:
            callers.check_owner(caller, await service.owner(ref), f"charging session {ref}")

    def location(ref: str) -> str:
        return f"{api_root(settings)}{API_ROOT}/chargingdata/{ref}"

    @bp.post("/chargingdata")
    async def create() -> Response:
        req = bind_caller(settings, await read_model(request, ChargingDataRequest,
                                                     max_bytes))
        status, body, ref = await service.create(req)
        resp = _json(status, body)
        if status == 201:
            resp.headers["Location"] = location(ref)
        return resp

    @bp.post("/chargingdata/<ref>/update")
    async def update(ref: str) -> Response:
        req = bind_caller(settings, await read_model(request, ChargingDataRequest,
                                                     max_bytes))
        await _check_owner(ref)
        status, body = await service.update(ref, req)
        return _json(status, body)

    @bp.post("/chargingdata/<ref>/release")
    async def release(ref: str) -> Response:
        req = bind_caller(settings, await read_model(request, ChargingDataRequest,
                                                     max_bytes))
        await _check_owner(ref)
        status, body = await service.release(ref, req)
        return _json(status, body)

    return bp
