"""HTTP handlers of Nchf_SpendingLimitControl v1 on the SBI port. Parsing and rendering only."""

from __future__ import annotations

from quart import Blueprint, Response, request

from nf.config import Settings
from nf.sbi.body import read_model
from nf.sbi.responses import api_root, json_response, no_content
from nf.security import caller as callers
from nf.slc.service import API_PREFIX, SlcService
from nf.slc.wire import SpendingLimitContext


def slc_blueprint(settings: Settings, service: SlcService) -> Blueprint:
    bp = Blueprint("nchf_spendinglimitcontrol", __name__, url_prefix=API_PREFIX)
    limit = settings.server.max_body_bytes

    async def check_owner(subscription_id: str) -> None:
        await callers.check_caller_owns(service.owner, subscription_id,
                                        f"subscription {subscription_id}")

    def check_target(ctx: SpendingLimitContext) -> None:
        callers.check_notify_uri(callers.network_of(settings, callers.current(), ()),
                                 "notifUri", ctx.notif_uri)

    @bp.post("/subscriptions")
    async def subscribe() -> Response:
        ctx = await read_model(request, SpendingLimitContext, limit)
        check_target(ctx)
        caller = callers.current()
        location, status = await service.subscribe(
            ctx, api_root(settings), caller.network.id if caller else None)
        return json_response(status, 201, {"Location": location})

    @bp.put("/subscriptions/<subscription_id>")
    async def modify(subscription_id: str) -> Response:
        ctx = await read_model(request, SpendingLimitContext, limit)
        check_target(ctx)
        await check_owner(subscription_id)
        return json_response(await service.modify(subscription_id, ctx))

    @bp.delete("/subscriptions/<subscription_id>")
    async def unsubscribe(subscription_id: str) -> Response:
        await check_owner(subscription_id)
        await service.unsubscribe(subscription_id)
        return no_content()

    return bp
