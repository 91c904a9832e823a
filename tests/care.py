"""Setting up subscribers and family groups through the care API (``/provisioning/v1`` on
OAM), as an end-to-end test does before its SMFs start: every call must succeed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

PROV = "/provisioning/v1"


class Care:
    """The provisioning API of one running NF, called with one API key."""

    def __init__(self, client: httpx.AsyncClient, oam: str, headers: Mapping[str, str]) -> None:
        self.client, self.base, self.headers = client, oam + PROV, dict(headers)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        r = await self.client.post(self.base + path, headers=self.headers, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def subscriber(self, supi: str, *, network: str = "northwind",
                         plan: str | None = None, brand: str | None = None) -> None:
        """A new subscriber (the key's brand unless ``brand``), on a plan or none."""
        body: dict[str, Any] = {"supi": supi, "homeNetwork": network}
        if plan is not None:
            body["planOfferId"] = plan
        if brand is not None:
            body["brand"] = brand
        await self.post("/subscribers", body)

    async def family(self, owner: str, offer: str, members: Sequence[str]) -> str:
        """A family group of ``owner`` on ``offer`` with ``members`` (existing subscribers
        on no plan); returns its id."""
        gid = str((await self.post("/groups", {"ownerSupi": owner, "offerId": offer}))["groupId"])
        for supi in members:
            await self.post(f"/groups/{gid}/members", {"supi": supi})
        return gid
