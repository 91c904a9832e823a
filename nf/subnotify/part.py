"""The notices part: hears counter changes, writes notices to the outbox, runs the SMS and
webhook senders, and serves the care view and preferences on the OAM port."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request

from nf import logs
from nf.catalog import CatalogHolder
from nf.clock import iso_z
from nf.errors import NfError, NotFound
from nf.ledger.port import CounterChange
from nf.ledger.state import Member, Wallet
from nf.ledger.views import blocks_at_cap, terms_of
from nf.runtime import Role, Runtime, Worker
from nf.sbi.body import read_model
from nf.sbi.responses import json_response
from nf.security.apikeys import ADMIN, api_scope
from nf.store.mongo import Doc
from nf.subnotify import events, quiet, templates, text
from nf.subnotify.outbox import NoticeOutbox
from nf.subnotify.smpp import SmppChannel
from nf.subnotify.webhook import WebhookChannel

log = logging.getLogger("nf.subnotify")
BASE = "/provisioning/v1"
BACKLOG_MAX = 10_000
MAX_LIST = 200


class Wallets(Protocol):
    """What the notices read of the ledger: a subscriber's wallet (``nf.wiring`` hands in
    the real ledger)."""

    async def wallet(self, supi: str, now: datetime) -> tuple[Wallet, Member] | None: ...


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    marketing: bool = True
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")


def _ts(t: datetime | None) -> str | None:
    return None if t is None else iso_z(t)


def notice_json(d: Doc) -> dict[str, Any]:
    return {"id": d["_id"], "event": d["kind"], "channel": d["channel"], "state": d["state"],
            "createdAt": _ts(d.get("created_at")), "dueAt": _ts(d.get("not_before")),
            "sentAt": _ts(d.get("sent_at")), "doneAt": _ts(d.get("done_at")),
            "destination": d.get("destination"), "language": d.get("language"),
            "text": d.get("text"), "parts": len(d.get("parts", ())) or None,
            "attempts": d.get("attempts", 0), "error": d.get("error")}


class SubNoticePart:
    name = "subnotify"

    def __init__(self, rt: Runtime, ledger: Wallets, catalog: CatalogHolder) -> None:
        self.rt = rt
        self.ledger = ledger
        self.catalog = catalog
        self.templates = templates.load_dir(rt.settings.catalog_dir,
                                            set(catalog.current.brands))
        self.outbox = NoticeOutbox(rt.db, rt.settings.notices.lease_s)
        self.sms_wake = asyncio.Event()
        self.web_wake = asyncio.Event()
        self.backlog: list[Doc] = []
        self.pending = 0
        # Orders notices due at the same time (one change may fire several).
        self._seq = 0
        self.counter = Counter("nf_subscriber_notices_total",
                               "Subscriber notices by brand, channel and state reached",
                               ["brand", "channel", "state"], registry=rt.metrics.registry)
        self.waiting = Gauge("nf_subscriber_notices_pending",
                             "Subscriber notices in the outbox not yet finished",
                             registry=rt.metrics.registry, multiprocess_mode="max")
        cfg = rt.settings
        # Nothing to do (and nothing read) without a channel.
        self.active = cfg.notices.enabled and (cfg.sms.enabled or any(
            b.webhook_enabled for b in cfg.notices.brands.values()))
        self.sms = SmppChannel(rt, self.outbox, self.sms_wake, self.count, self.marketing_ok)
        self.web = WebhookChannel(rt, self.outbox, self.web_wake, self.count,
                                  self.marketing_ok)

    def count(self, brand: str, channel: str, state: str) -> None:
        self.counter.labels(brand, channel, state).inc()

    async def marketing_ok(self, doc: Doc) -> bool:
        prefs = await self.outbox.preferences(doc["supi"])
        return bool(prefs.get("marketing", True))

    # ------------------------------------------------------------------ the listener

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        """Write the notices these changes fire. The changes are committed already: a
        database failure keeps the notices in a bounded backlog for the worker."""
        if not self.active:
            return
        wanted = [c for c in changes if events.may_fire(c)]
        if not wanted:
            return
        docs: list[Doc] = []
        try:
            for c in wanted:
                docs += await self._docs_for(c)
            await self._insert(docs)
        except NfError as e:
            if len(self.backlog) + len(docs) > BACKLOG_MAX:
                logs.log(log, logging.ERROR, "notice backlog full; notices dropped",
                         count=len(docs), detail=e.detail)
                return
            self.backlog += docs
            logs.log(log, logging.WARNING, "notices kept for retry", count=len(docs),
                     detail=e.detail)

    async def _insert(self, docs: list[Doc]) -> None:
        if not docs:
            return
        if self.pending > self.rt.settings.notices.max_pending:
            for d in docs:
                self.count(d["brand"], d["channel"], "dropped")
            logs.log(log, logging.ERROR, "notice outbox full; notices dropped",
                     count=len(docs), pending=self.pending)
            return
        new = await self.outbox.insert(docs)
        if new:
            for d in docs:
                self.count(d["brand"], d["channel"], "queued")
            self.sms_wake.set()
            self.web_wake.set()

    async def _recipient(self, supi: str, now: datetime) -> tuple[Wallet, Member] | None:
        return await self.ledger.wallet(supi, now)

    async def _docs_for(self, c: CounterChange) -> list[Doc]:
        now = self.rt.clock.now()
        got = await self._recipient(c.supi, now)
        if got is None:
            return []
        w, m = got
        brand = self.catalog.current.brand(m.brand)
        start = m.period_start if m.plan is not None else w.family_period_start
        end = m.period_end if m.plan is not None else w.family_period_end
        held = tuple(b.id for b in w.buckets if b.owner == m.supi
                     and b.kind in ("addon", "roaming"))
        ctx = events.Context(supi=m.supi, brand=m.brand, period_start=start, period_end=end,
                             holdings=held, block_action=brand.block_final_unit_action
                             if brand else "TERMINATE",
                             cap_blocks=blocks_at_cap(terms_of(w, m)))
        lead = timedelta(seconds=self.rt.settings.notices.expiry_lead_s)
        out: list[Doc] = []
        for n in events.notices_for(c, ctx, now, lead):
            self._seq += 1
            if n.supi != m.supi:
                other = await self._recipient(n.supi, now)
                if other is None:
                    continue
                out += await self._render(n, other[1], now)
            else:
                out += await self._render(n, m, now)
        return out

    async def _render(self, n: events.Notice, m: Member, now: datetime) -> list[Doc]:
        cfg = self.rt.settings
        bt = self.templates.get(m.brand)
        if bt is None:
            return []
        prefs = await self.outbox.preferences(m.supi)
        picked = bt.pick(n.kind, prefs.get("language"))
        if picked is None:
            return []
        lang, tpl = picked
        brand = self.catalog.current.brand(m.brand)
        bcfg = cfg.notices.brands.get(m.brand)
        tz = bcfg.time_zone if bcfg else "UTC"
        offer_id = n.params.get("offer_id")
        found = self.catalog.current.offer(str(offer_id)) if offer_id else None
        body = templates.render(
            tpl, n.params, brand=brand.name if brand else m.brand, tz=tz,
            topup=(bcfg.topup if bcfg and bcfg.topup else brand.topup_url if brand else None),
            offer_name=found[1].name if found else None)
        due = n.due_at
        if not n.urgent and bcfg is not None:
            due = quiet.release_at(due, tz, bcfg.quiet_start, bcfg.quiet_end)
        state = "scheduled" if n.due_at > now else "held" if due > n.due_at else "queued"
        base: Doc = {"key": n.key, "supi": m.supi, "brand": m.brand, "kind": n.kind.value,
                     "subject": n.subject, "urgent": n.urgent, "marketing": n.marketing,
                     "language": lang, "text": body, "state": state, "created_at": now,
                     "due_at": n.due_at, "not_before": due, "attempts": 0,
                     "seq": int(now.timestamp() * 1000) * 1000 + self._seq % 1000,
                     "history": [{"state": state, "at": now}]}
        out: list[Doc] = []
        sms = cfg.sms.brands.get(m.brand)
        if cfg.sms.enabled and sms is not None and m.gpsi and (bcfg is None or bcfg.sms):
            ref = int(hashlib.sha256(n.key.encode()).hexdigest()[:2], 16)
            enc = text.encode(body, ref)
            out.append({**base, "_id": f"{n.key}|sms", "channel": "sms",
                        "destination": m.gpsi.removeprefix("msisdn-"),
                        "source": {"addr": sms.source_addr, "ton": sms.source_ton,
                                   "npi": sms.source_npi},
                        "dcs": enc.dcs, "nparts": len(enc.parts),
                        "parts": [{"hex": p.hex()} for p in enc.parts]})
        if bcfg is not None and bcfg.webhook_enabled:
            payload = {"id": f"{n.key}|webhook", "event": n.kind.value, "supi": m.supi,
                       "gpsi": m.gpsi, "brand": m.brand, "language": lang, "text": body,
                       "occurredAt": iso_z(n.due_at),
                       "data": {k: (iso_z(v) if isinstance(v, datetime) else v)
                                for k, v in n.params.items()}}
            out.append({**base, "_id": f"{n.key}|webhook", "channel": "webhook",
                        "destination": bcfg.webhook_url, "payload": payload})
        return out

    # ------------------------------------------------------------------ the part

    def blueprints(self, role: Role) -> list[Blueprint]:
        return [self._care()] if role == "oam" else []

    async def ensure_indexes(self) -> None:
        await self.outbox.ensure_indexes()

    def workers(self) -> list[Worker]:
        out: list[Worker] = [self._housekeeping] if self.active else []
        if self.rt.settings.sms.enabled:
            out.append(self.sms.run)
        if any(b.webhook_enabled for b in self.rt.settings.notices.brands.values()):
            out.append(self.web.run)
        return out

    async def _housekeeping(self) -> None:
        """Retry notices kept after a database failure; refresh the outbox size."""
        rt = self.rt
        while not rt.stopping.is_set():
            try:
                if self.backlog:
                    docs, self.backlog = self.backlog[:500], self.backlog[500:]
                    try:
                        await self._insert(docs)
                    except NfError:
                        self.backlog = docs + self.backlog
                        raise
                self.pending = await self.outbox.pending()
                self.waiting.set(self.pending)
            except NfError as e:
                logs.log(log, logging.WARNING, "notice housekeeping failed", detail=e.detail)
            await rt.pause(max(1.0, rt.settings.notices.poll_interval_s * 5))

    def _care(self) -> Blueprint:
        bp = Blueprint("subnotify", __name__)
        rt, ledger = self.rt, self.ledger

        async def owned(supi: str) -> Member:
            scope = api_scope(rt.api_keys)
            got = await ledger.wallet(supi, rt.clock.now())
            if got is None or scope not in (ADMIN, got[1].brand):
                raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
            return got[1]

        @bp.get(f"{BASE}/subscribers/<supi>/notifications")
        async def notifications(supi: str) -> Response:
            await owned(supi)
            raw = request.args.get("limit", "50")
            limit = int(raw) if raw.isdigit() else 50
            docs = await self.outbox.for_subscriber(supi, max(1, min(MAX_LIST, limit)))
            return json_response({"supi": supi,
                                  "notifications": [notice_json(d) for d in docs]})

        @bp.get(f"{BASE}/subscribers/<supi>/notification-preferences")
        async def get_prefs(supi: str) -> Response:
            await owned(supi)
            p = await self.outbox.preferences(supi)
            return json_response({"marketing": p.get("marketing", True),
                                  "language": p.get("language")})

        @bp.put(f"{BASE}/subscribers/<supi>/notification-preferences")
        async def put_prefs(supi: str) -> Response:
            body = await read_model(request, PreferencesIn, rt.settings.server.max_body_bytes)
            await owned(supi)
            p = await self.outbox.set_preferences(supi, body.marketing, body.language,
                                                  rt.clock.now())
            return json_response({"marketing": p["marketing"], "language": p["language"]})

        return bp
