"""HTTP handlers of Nchf_SpendingLimitControl v1 on the SBI port. Parsing and rendering only."""

from __future__ import annotations

from quart import Blueprint, Response, request

from nf.config import Settings
from nf.sbi.body import read_model
from nf.sbi.responses import api_root, json_response, no_content
from nf.slc.service import API_PREFIX, SlcService
from nf.slc.wire import SpendingLimitContext


def slc_blueprint(settings: Settings, service: SlcService) -> Blueprint:
    bp = Blueprint("nchf_spendinglimitcontrol", __name__, url_prefix=API_PREFIX)
    limit = settings.server.max_body_bytes

    @bp.post("/subscriptions")
    async def subscribe() -> Response:
        ctx = await read_model(request, SpendingLimitContext, limit)
        location, status = await service.subscribe(ctx, api_root(settings))
        return json_response(status, 201, {"Location": location})

    @bp.put("/subscriptions/<subscription_id>")
    async def modify(subscription_id: str) -> Response:
        ctx = await read_model(request, SpendingLimitContext, limit)
        return json_response(await service.modify(subscription_id, ctx))

    @bp.delete("/subscriptions/<subscription_id>")
    async def unsubscribe(subscription_id: str) -> Response:
        await service.unsubscribe(subscription_id)
        return no_content()

    return bp
