"""HTTP handlers of Npcf_SMPolicyControl v1 on the SBI port. Parsing and rendering only."""

from __future__ import annotations

from quart import Blueprint, Response

from nf.config import Settings
from nf.pcf.service import API_PREFIX, PcfService, policy_id
from nf.pcf.wire import SmPolicyContextData, SmPolicyDeleteData, SmPolicyUpdateContextData
from nf.sbi.body import parse_model, read_json, read_model
from nf.sbi.direct import Route, SbiRequest, blueprint_of, route
from nf.sbi.responses import Answer, api_root, json_response
from nf.security import caller as callers


def pcf_routes(settings: Settings, service: PcfService) -> list[Route]:
    """Create, update and delete: the operations both the direct path (``nf.sbi.direct``)
    and the blueprint serve."""
    limit = settings.server.max_body_bytes

    async def check_owner(sm_policy_id: str) -> None:
        await callers.check_caller_owns(service.owner, sm_policy_id, f"SM policy {sm_policy_id}")

    async def create_sm_policy(req: SbiRequest, _params: dict[str, str]) -> Answer:
        ctx = await read_model(req, SmPolicyContextData, limit)
        caller = callers.current()
        serving = ctx.serving_network.plmn if ctx.serving_network else None
        callers.check_plmns(settings, caller, others=[("servingNetwork", serving)])
        callers.check_notify_uri(callers.network_of(settings, caller, [serving]),
                                 "notificationUri", ctx.notification_uri)
        # A repeated create replaces the association of the same id: only its creator's.
        await check_owner(policy_id(ctx.supi, ctx.pdu_session_id, ctx.notification_uri))
        location, decision = await service.create(
            ctx, api_root(settings, req.host_url), caller.network.id if caller else None)
        return Answer(201, decision, {"Location": location})

    async def update_sm_policy(req: SbiRequest, params: dict[str, str]) -> Answer:
        sm_policy_id = params["sm_policy_id"]
        upd = await read_model(req, SmPolicyUpdateContextData, limit)
        callers.check_plmns(settings, callers.current(), others=[
            ("servingNetwork", upd.serving_network.plmn if upd.serving_network else None)])
        await check_owner(sm_policy_id)
        return Answer(200, await service.update(sm_policy_id, upd))

    async def delete_sm_policy(req: SbiRequest, params: dict[str, str]) -> Answer:
        sm_policy_id = params["sm_policy_id"]
        # The body (SmPolicyDeleteData) carries only reporting data; an SMF that sends
        # none is not refused, but one that sends a malformed body is.
        # A JSON ``null`` is the same as no body (some generated clients send it).
        if req.content_length or req.mimetype:
            data = await read_json(req, limit)
            if data is not None:
                parse_model(SmPolicyDeleteData, data)
        await check_owner(sm_policy_id)
        await service.delete(sm_policy_id)
        return Answer(204)

    p = "npcf_smpolicycontrol"
    return [route(API_PREFIX, "/sm-policies", f"{p}.create_sm_policy", create_sm_policy),
            route(API_PREFIX, "/sm-policies/<sm_policy_id>/update", f"{p}.update_sm_policy",
                  update_sm_policy),
            route(API_PREFIX, "/sm-policies/<sm_policy_id>/delete", f"{p}.delete_sm_policy",
                  delete_sm_policy)]


def pcf_blueprint(settings: Settings, service: PcfService) -> Blueprint:
    bp = blueprint_of(Blueprint("npcf_smpolicycontrol", __name__, url_prefix=API_PREFIX),
                      pcf_routes(settings, service))

    @bp.get("/sm-policies/<sm_policy_id>")
    async def get_sm_policy(sm_policy_id: str) -> Response:
        await callers.check_caller_owns(service.owner, sm_policy_id, f"SM policy {sm_policy_id}")
        return json_response(await service.get(sm_policy_id))

    return bp
