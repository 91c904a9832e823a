"""The webhook channel: each notice as a JSON POST to the brand's CRM or push service.

Signed with HMAC-SHA256 over ``<timestamp>.<body>`` with the brand's secret, sent as
``X-Nf-Signature: t=<unix seconds>,v1=<hex>`` (``nf.security.webhooks``, shared with the
fraud-case webhooks); the receiver recomputes it and rejects old timestamps. 2xx is done;
anything else (or no answer) is retried with a doubling backoff up to
``webhook_max_attempts``; 4xx other than 408/429 is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from nf import logs
from nf.errors import NfError
from nf.runtime import Runtime
from nf.security.webhooks import SIGNATURE_HEADER, sign
from nf.subnotify.holder import this_process
from nf.subnotify.outbox import NoticeOutbox, reclaim_at_start

log = logging.getLogger("nf.subnotify.webhook")


class WebhookChannel:
    def __init__(self, rt: Runtime, outbox: NoticeOutbox, wake: asyncio.Event,
                 count: Callable[[str, str, str], None],
                 marketing_ok: Callable[[dict[str, Any]], Any]) -> None:
        self.rt = rt
        self.outbox = outbox
        self.wake = wake
        self.count = count
        self.marketing_ok = marketing_ok
        self.holder = this_process(rt.settings.instance_id)

    async def run(self) -> None:
        rt, cfg = self.rt, self.rt.settings.notices
        await reclaim_at_start(self.outbox, "webhook", rt.clock.now(), self.holder)
        async with httpx.AsyncClient(timeout=cfg.webhook_timeout_s,
                                     limits=httpx.Limits(max_connections=16)) as client:
            while not rt.stopping.is_set():
                try:
                    got = await self.outbox.claim("webhook", rt.clock.now(), self.holder)
                    doc = got[0] if got else None
                    if doc is None:
                        self.wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.wake.wait(),
                                                   timeout=cfg.poll_interval_s)
                        continue
                    await self._post(client, doc)
                except NfError as e:
                    logs.log(log, logging.WARNING, "webhook outbox unavailable",
                             detail=e.detail)
                    await rt.pause(cfg.poll_interval_s)

    async def _post(self, client: httpx.AsyncClient, doc: dict[str, Any]) -> None:
        rt, cfg = self.rt, self.rt.settings.notices
        now = rt.clock.now()
        brand = cfg.brands.get(doc["brand"])
        if brand is None or not brand.webhook_enabled or not brand.webhook_url \
                or not brand.webhook_secret:
            await self.outbox.finish(doc["_id"], now, "failed", "webhook not configured")
            return
        if doc.get("marketing") and not await self.marketing_ok(doc):
            await self.outbox.finish(doc["_id"], now, "suppressed", "opted out")
            self.count(doc["brand"], "webhook", "suppressed")
            return
        body = json.dumps(doc["payload"], separators=(",", ":"), sort_keys=True).encode()
        ts = int(now.timestamp())
        headers = {"content-type": "application/json",
                   SIGNATURE_HEADER: sign(brand.webhook_secret, ts, body),
                   "X-Nf-Notice-Id": doc["payload"]["id"]}
        error: str
        final = False
        try:
            r = await client.post(brand.webhook_url, content=body, headers=headers)
            if 200 <= r.status_code < 300:
                await self.outbox.sent(doc["_id"], rt.clock.now())
                self.count(doc["brand"], "webhook", "delivered")
                return
            error = f"HTTP {r.status_code}"
            final = 400 <= r.status_code < 500 and r.status_code not in (408, 429)
        except httpx.HTTPError as e:
            error = type(e).__name__
        if final or doc["attempts"] >= cfg.webhook_max_attempts:
            await self.outbox.finish(doc["_id"], rt.clock.now(), "failed", error)
            self.count(doc["brand"], "webhook", "failed")
            logs.log(log, logging.WARNING, "webhook gave up", brand=doc["brand"],
                     notice=doc["_id"], error=error)
            return
        delay = min(cfg.webhook_max_backoff_s,
                    cfg.webhook_backoff_s * 2 ** max(0, doc["attempts"] - 1))
        await self.outbox.retry(doc["_id"], now, now + timedelta(seconds=delay), error)
