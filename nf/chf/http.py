"""The CHF's HTTP handlers (SBI port): Nchf_ConvergedCharging v3 create, update, release.

Handlers only read the body into the wire model, call the service and render; every error
is an ``NfError`` rendered once by the app as ProblemDetails.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from nf.chf.service import ChargingService
from nf.chf.wire import ChargingDataRequest, PlmnId
from nf.config import Settings
from nf.sbi.body import read_model
from nf.sbi.direct import Route, SbiRequest, blueprint_of, route
from nf.sbi.responses import Answer, api_root
from nf.security import caller as callers

API_ROOT = "/nchf-convergedcharging/v3"


def _answer(status: int, body: dict[str, Any] | None) -> Answer:
    if body is None:
        return Answer(204)
    # Refusals carry a ChargingDataResponse with invocationResult as problem+json (TS 32.291).
    ctype = "application/json" if status < 400 else "application/problem+json"
    return Answer(status, body, content_type=ctype)


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


def chf_routes(settings: Settings, service: ChargingService) -> list[Route]:
    """Create, update and release: the operations both the direct path (``nf.sbi.direct``)
    and the blueprint serve."""
    max_bytes = settings.server.max_body_bytes

    async def _check_owner(ref: str) -> None:
        caller = callers.current()
        if caller is not None:
            callers.check_owner(caller, await service.owner(ref), f"charging session {ref}")

    async def create(req: SbiRequest, _params: dict[str, str]) -> Answer:
        body = bind_caller(settings, await read_model(req, ChargingDataRequest, max_bytes))
        status, answer, ref = await service.create(body)
        out = _answer(status, answer)
        if status == 201:
            root = api_root(settings, req.host_url)
            out.headers["Location"] = f"{root}{API_ROOT}/chargingdata/{ref}"
        return out

    async def update(req: SbiRequest, params: dict[str, str]) -> Answer:
        ref = params["ref"]
        body = bind_caller(settings, await read_model(req, ChargingDataRequest, max_bytes))
        await _check_owner(ref)
        return _answer(*await service.update(ref, body))

    async def release(req: SbiRequest, params: dict[str, str]) -> Answer:
        ref = params["ref"]
        body = bind_caller(settings, await read_model(req, ChargingDataRequest, max_bytes))
        await _check_owner(ref)
        return _answer(*await service.release(ref, body))

    return [route(API_ROOT, "/chargingdata", "chf.create", create),
            route(API_ROOT, "/chargingdata/<ref>/update", "chf.update", update),
            route(API_ROOT, "/chargingdata/<ref>/release", "chf.release", release)]


def chf_blueprint(settings: Settings, service: ChargingService) -> Blueprint:
    return blueprint_of(Blueprint("chf", __name__, url_prefix=API_ROOT),
                        chf_routes(settings, service))
