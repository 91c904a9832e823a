"""Provisioning and care API on the OAM port (``openapi/provisioning.yaml``).

Every call carries ``X-API-Key``; ``Settings.api_keys`` maps it to one brand or to ``*``
(operator-wide admin). A brand key only ever sees its own brand: another brand's subscriber
or group answers 404 exactly like a missing one, so keys cannot probe each other's bases.
Input is validated completely before anything is written. Changes that affect sessions
(purchase, status, group membership) are published to the counter listeners (PCF, CHF).
The POSTs that create or buy something honour ``Idempotency-Key`` (``nf.oam.idempotency``).
Keys are checked by ``nf.security.apikeys`` (digests, constant-time).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request

from nf.catalog import CatalogError, CatalogHolder
from nf.catalog.model import AnyOffer
from nf.edr.port import EdrSink
from nf.edr.records import Party, status_record
from nf.errors import (
    Forbidden,
    InvalidParam,
    NfError,
    NotFound,
    Unprocessable,
)
from nf.ledger.port import BalanceView, SubscriberStatus
from nf.ledger.state import Member, Wallet
from nf.ledger.subscribers import NewSubscriber
from nf.oam.idempotency import IdempotencyKeys
from nf.oam.port import CareLedger
from nf.oam.views import balance_json, group_json, offer_json, subscriber_json
from nf.runtime import Runtime
from nf.sbi.body import read_model
from nf.sbi.responses import json_response, no_content
from nf.security.apikeys import ADMIN, api_scope

log = logging.getLogger("nf.oam")

BASE = "/provisioning/v1"
SUPI = r"^imsi-[0-9]{5,15}$"
MIB = 1024 * 1024


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewSubscriberIn(_In):
    supi: str = Field(pattern=SUPI)
    gpsi: str | None = Field(None, pattern=r"^msisdn-[0-9]{5,15}$")
    brand: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,31}$")
    homeNetwork: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    planOfferId: str | None = Field(None, max_length=64)
    status: Literal["active", "suspended", "blocked"] = "active"


class StatusIn(_In):
    status: Literal["active", "suspended", "blocked"]


class PurchaseIn(_In):
    offerId: str = Field(min_length=1, max_length=64)


class NewGroupIn(_In):
    ownerSupi: str = Field(pattern=SUPI)
    offerId: str = Field(min_length=1, max_length=64)


class JoinIn(_In):
    supi: str = Field(pattern=SUPI)
    # Cap on what this member may draw from the pool per period, MiB (default: the plan's).
    capMb: int | None = Field(None, ge=0, le=100 * 1024 * 1024)


def _json(body: Any, status: int = 200) -> Response:
    return json_response(body, status)


def _party(m: Member) -> Party:
    return Party(supi=m.supi, gpsi=m.gpsi, brand=m.brand, host_network=m.home_network)


def provisioning_blueprint(rt: Runtime, ledger: CareLedger, catalog: CatalogHolder,
                           edrs: EdrSink | None = None) -> Blueprint:
    bp = Blueprint("provisioning", __name__)
    max_body = rt.settings.server.max_body_bytes
    keys = rt.api_keys
    once = IdempotencyKeys(rt)

    def scope() -> str:
        return api_scope(keys)

    def admin() -> None:
        if scope() != ADMIN:
            raise Forbidden("an operator-wide admin key is required")

    def brand_ok(scope_brand: str, brand: str) -> bool:
        return scope_brand in (ADMIN, brand)

    def no_subscriber(supi: str) -> NotFound:
        return NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")

    async def owned(supi: str, now: datetime) -> tuple[Wallet, Member]:
        """The subscriber, if the key's brand may see them (else 404, as if missing)."""
        s = scope()
        got = await ledger.wallet(supi, now)
        if got is None or not brand_ok(s, got[1].brand):
            raise no_subscriber(supi)
        return got

    def group_brand(w: Wallet) -> str | None:
        if w.family is None:
            return None
        found = catalog.current.offer(w.family.offer_id)
        return found[0] if found else None

    async def owned_group(group_id: str, now: datetime) -> Wallet:
        s = scope()
        g = await ledger.group(group_id, now)
        if g is None or not brand_ok(s, group_brand(g) or ""):
            raise NotFound(f"no family group {group_id}", cause="GROUP_NOT_FOUND")
        return g

    async def sub_out(supi: str, now: datetime) -> dict[str, Any]:
        got = await ledger.wallet(supi, now)
        view = await ledger.subscriber(supi, now)
        if got is None or view is None:
            raise no_subscriber(supi)
        return subscriber_json(view, got[1])

    @bp.post(f"{BASE}/subscribers")
    async def create_subscriber() -> Response:
        s = scope()
        body = await read_model(request, NewSubscriberIn, max_body)
        brand = body.brand or (s if s != ADMIN else None)
        if brand is None:
            raise Unprocessable("brand is required with the admin key",
                                cause="MANDATORY_IE_MISSING")
        if not brand_ok(s, brand):
            raise Forbidden(f"this key may not create subscribers of brand {brand}")

        async def create() -> Response:
            now = rt.clock.now()
            await ledger.create_subscriber(
                NewSubscriber(supi=body.supi, brand=brand, home_network=body.homeNetwork,
                              gpsi=body.gpsi, plan_offer_id=body.planOfferId,
                              status=SubscriberStatus(body.status)), now)
            resp = _json(await sub_out(body.supi, now), 201)
            resp.headers["Location"] = f"{BASE}/subscribers/{body.supi}"
            return resp

        return await once.run(s, body.model_dump(mode="json"), create)

    @bp.get(f"{BASE}/subscribers/<supi>")
    async def read_subscriber(supi: str) -> Response:
        now = rt.clock.now()
        await owned(supi, now)
        return _json(await sub_out(supi, now))

    @bp.patch(f"{BASE}/subscribers/<supi>")
    async def update_subscriber(supi: str) -> Response:
        now = rt.clock.now()
        body = await read_model(request, StatusIn, max_body)
        _, m = await owned(supi, now)
        # Counter changes reach the listeners through the ledger's pending effects.
        await ledger.set_status(supi, SubscriberStatus(body.status), now)
        if edrs is not None:
            await edrs.write(status_record(time=now, party=_party(m), status=body.status,
                                           status_before=m.status.value, by="care"))
        return _json(await sub_out(supi, now))

    @bp.delete(f"{BASE}/subscribers/<supi>")
    async def delete_subscriber(supi: str) -> Response:
        now = rt.clock.now()
        await owned(supi, now)
        if not await ledger.delete_subscriber(supi, now):
            raise no_subscriber(supi)
        return no_content()

    @bp.post(f"{BASE}/subscribers/<supi>/purchases")
    async def purchase(supi: str) -> Response:
        now = rt.clock.now()
        body = await read_model(request, PurchaseIn, max_body)
        await owned(supi, now)  # brand scope first: another brand's is a 404

        async def buy() -> Response:
            # Counter changes reach the listeners through the ledger's pending effects,
            # and so does the purchase EDR (``nf.edr.purchases``).
            await ledger.purchase(supi, body.offerId, now)
            bal = await ledger.balance(supi, now)
            assert bal is not None
            return _json(balance_json(bal, now), 201)

        return await once.run(scope(), body.model_dump(mode="json"), buy)

    @bp.get(f"{BASE}/subscribers/<supi>/balance")
    async def balance(supi: str) -> Response:
        now = rt.clock.now()
        await owned(supi, now)
        bal: BalanceView | None = await ledger.balance(supi, now)
        if bal is None:
            raise no_subscriber(supi)
        return _json(balance_json(bal, now))

    @bp.get(f"{BASE}/brands/<brand>/offers")
    async def offers(brand: str) -> Response:
        s = scope()
        if not brand_ok(s, brand) or catalog.current.brand(brand) is None:
            raise NotFound(f"no brand {brand}", cause="BRAND_NOT_FOUND")
        items: list[AnyOffer] = catalog.current.offers_of(brand)
        return _json({"brand": brand, "offers": [offer_json(o) for o in items]})

    @bp.post(f"{BASE}/groups")
    async def create_group() -> Response:
        now = rt.clock.now()
        body = await read_model(request, NewGroupIn, max_body)
        await owned(body.ownerSupi, now)

        async def create() -> Response:
            gid = await ledger.create_group(body.ownerSupi, body.offerId, now)
            # Counter changes reach the listeners through the ledger's pending effects.
            await ledger.join_group(body.ownerSupi, gid, now)
            g = await ledger.group(gid, now)
            assert g is not None
            resp = _json(group_json(g, now), 201)
            resp.headers["Location"] = f"{BASE}/groups/{gid}"
            return resp

        return await once.run(scope(), body.model_dump(mode="json"), create)

    @bp.get(f"{BASE}/groups/<group_id>")
    async def read_group(group_id: str) -> Response:
        now = rt.clock.now()
        return _json(group_json(await owned_group(group_id, now), now))

    @bp.post(f"{BASE}/groups/<group_id>/members")
    async def join(group_id: str) -> Response:
        now = rt.clock.now()
        body = await read_model(request, JoinIn, max_body)
        await owned_group(group_id, now)
        await owned(body.supi, now)
        cap = None if body.capMb is None else body.capMb * MIB

        async def join() -> Response:
            # Counter changes reach the listeners through the ledger's pending effects.
            await ledger.join_group(body.supi, group_id, now, cap)
            return _json(group_json(await owned_group(group_id, now), now), 201)

        return await once.run(scope(), body.model_dump(mode="json"), join)

    @bp.delete(f"{BASE}/groups/<group_id>/members/<supi>")
    async def leave(group_id: str, supi: str) -> Response:
        now = rt.clock.now()
        g = await owned_group(group_id, now)
        if g.member(supi) is None:
            raise NotFound(f"{supi} is not a member of group {group_id}",
                           cause="USER_NOT_FOUND")
        # Counter changes reach the listeners through the ledger's pending effects.
        await ledger.leave_group(supi, now)
        return no_content()

    @bp.post(f"{BASE}/catalog/reload")
    async def reload_catalog() -> Response:
        admin()
        try:
            cat = catalog.reload()
        except CatalogError as e:
            raise NfError("the catalogue was not reloaded; the previous one stays in use",
                          422, "INVALID_CATALOG", "Unprocessable request",
                          [InvalidParam(param="catalog", reason=p) for p in e.problems[:50]]
                          ) from None
        return _json({"brands": len(cat.brands), "offers": len(cat)})

    return bp
