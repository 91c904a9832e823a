"""HTTP handlers of Npcf_SMPolicyControl v1 on the SBI port. Parsing and rendering only."""

from __future__ import annotations

from quart import Blueprint, Response, request

from nf.config import Settings
from nf.pcf.service import API_PREFIX, PcfService, policy_id
from nf.pcf.wire import SmPolicyContextData, SmPolicyDeleteData, SmPolicyUpdateContextData
from nf.sbi.body import parse_model, read_json, read_model
from nf.sbi.responses import api_root, json_response, no_content
from nf.security import caller as callers


def pcf_blueprint(settings: Settings, service: PcfService) -> Blueprint:
    bp = Blueprint("npcf_smpolicycontrol", __name__, url_prefix=API_PREFIX)
    limit = settings.server.max_body_bytes

    async def check_owner(sm_policy_id: str) -> None:
        caller = callers.current()
        if caller is not None:
            callers.check_owner(caller, await service.owner(sm_policy_id),
                                f"SM policy {sm_policy_id}")

    @bp.post("/sm-policies")
    async def create_sm_policy() -> Response:
        ctx = await read_model(request, SmPolicyContextData, limit)
        caller = callers.current()
        serving = ctx.serving_network.plmn if ctx.serving_network else None
        callers.check_plmns(settings, caller, others=[("servingNetwork", serving)])
        callers.check_notify_uri(callers.network_of(settings, caller, [serving]),
                                 "notificationUri", ctx.notification_uri)
        # A repeated create replaces the association of the same id: only its creator's.
        await check_owner(policy_id(ctx.supi, ctx.pdu_session_id, ctx.notification_uri))
        location, decision = await service.create(
            ctx, api_root(settings), caller.network.id if caller else None)
        return json_response(decision, 201, {"Location": location})

    @bp.get("/sm-policies/<sm_policy_id>")
    async def get_sm_policy(sm_policy_id: str) -> Response:
        await check_owner(sm_policy_id)
        return json_response(await service.get(sm_policy_id))

    @bp.post("/sm-policies/<sm_policy_id>/update")
    async def update_sm_policy(sm_policy_id: str) -> Response:
        upd = await read_model(request, SmPolicyUpdateContextData, limit)
        callers.check_plmns(settings, callers.current(), others=[
            ("servingNetwork", upd.serving_network.plmn if upd.serving_network else None)])
        await check_owner(sm_policy_id)
        return json_response(await service.update(sm_policy_id, upd))

    @bp.post("/sm-policies/<sm_policy_id>/delete")
    async def delete_sm_policy(sm_policy_id: str) -> Response:
        # The body (SmPolicyDeleteData) carries only reporting data; an SMF that sends
        # none is not refused, but one that sends a malformed body is.
        # A JSON ``null`` is the same as no body (some generated clients send it).
        if request.content_length or request.mimetype:
            data = await read_json(request, limit)
            if data is not None:
                parse_model(SmPolicyDeleteData, data)
        await check_owner(sm_policy_id)
        await service.delete(sm_policy_id)
        return no_content()

    return bp
