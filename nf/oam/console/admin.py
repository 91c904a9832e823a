"""The console's one operation on the provisioning API: sign out everyone of a brand.

``DELETE /provisioning/v1/brands/{brand}/console-sessions`` ends every console session
signed in with a key of that brand (``*``: the operator's admin sessions), at once, in
every process. Guarded like the rest of the provisioning API: the admin key may sign out
any brand, a brand's key only its own (another brand is "not found", as everywhere).
"""

from __future__ import annotations

import logging
import re

from quart import Blueprint, Response

from nf import logs
from nf.errors import NotFound
from nf.oam.console.sessions import ConsoleSessions
from nf.oam.provisioning import BASE
from nf.runtime import Runtime
from nf.sbi.responses import json_response
from nf.security.apikeys import ADMIN, api_scope

log = logging.getLogger("nf.console")
_BRAND = re.compile(r"^([a-z][a-z0-9-]{0,31}|\*)$")


def console_admin_blueprint(rt: Runtime, sessions: ConsoleSessions) -> Blueprint:
    bp = Blueprint("console_admin", __name__)
    keys = rt.api_keys

    @bp.delete(f"{BASE}/brands/<brand>/console-sessions")
    async def sign_out_brand(brand: str) -> Response:
        scope = api_scope(keys)
        if not _BRAND.match(brand) or scope not in (ADMIN, brand):
            raise NotFound(f"no brand {brand[:32]}", cause="BRAND_NOT_FOUND")
        ended = await sessions.end_brand(brand)
        logs.log(log, logging.WARNING, "console sessions signed out", brand=brand,
                 sessions=ended, by="admin" if scope == ADMIN else "brand")
        return json_response({"brand": brand, "signedOut": ended})

    return bp
