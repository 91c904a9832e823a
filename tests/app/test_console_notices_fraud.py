"""The subscriber page's "notifications sent" and "fraud cases": read through the notices
outbox and the fraud case store, brand-scoped, newest first and bounded, and shown only
where those parts are on."""

from __future__ import annotations

import re
from datetime import timedelta

from quart import Quart

from nf.clock import FakeClock
from nf.config import BrandNotices, NoticeSettings, Settings
from nf.fraud.part import FraudPart
from nf.ledger.part import LedgerPart
from nf.ledger.port import SubscriberStatus
from nf.oam.console.routes import SIDE_LIST_MAX
from nf.store.mongo import Db, Doc
from nf.subnotify.part import SubNoticePart
from nf.wiring import create_app
from tests.app.test_console import HARBOR_KEY, LUMEN_KEY, S1, S2, C, _sign_in, make_app

WEBHOOK = BrandNotices(webhook_url="http://127.0.0.1:9/hooks", webhook_secret="s" * 32,
                       webhook_enabled=True)
NOTICE_ROW = re.compile(r'<li class="notice">')
CASE_ROW = re.compile(r'<li class="case">')


def _with_notices(settings: Settings) -> Settings:
    return settings.model_copy(update={"notices": NoticeSettings(
        brands={"lumen": WEBHOOK, "harbor": WEBHOOK})})


def _part(app: Quart, kind: type) -> object:
    return next(p for p in app.extensions["nf.parts"] if isinstance(p, kind))


def _notice(i: int, supi: str, brand: str, clock: FakeClock) -> Doc:
    at = clock.now() - timedelta(minutes=100 - i)
    return {"_id": f"seeded-{supi}-{i}|webhook", "key": f"seeded-{supi}-{i}", "supi": supi,
            "brand": brand, "kind": "usage", "channel": "webhook", "state": "delivered",
            "text": f"{brand} notice number {i:02d} for {supi}", "created_at": at,
            "due_at": at, "not_before": at, "sent_at": at, "done_at": at, "attempts": 1,
            "history": [{"state": "delivered", "at": at}]}


def _case(n: int, supi: str, brand: str, clock: FakeClock, status: str = "open") -> Doc:
    at = clock.now() - timedelta(hours=10 - n)
    return {"_id": f"case-{brand}-{n}", "brand": brand, "supi": supi,
            "rule": "multi_network", "status": status, "action": "throttle",
            "applied": "throttle" if status == "open" else None, "trigger": {},
            "detected_at": at, "opened_at": at, "updated_at": at, "audit": []}


async def test_notices_and_fraud_cases_on_the_subscriber_page(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    app = await make_app(_with_notices(settings), db, clock)
    notices = _part(app, SubNoticePart)
    fraud = _part(app, FraudPart)
    ledger = _part(app, LedgerPart)
    assert isinstance(notices, SubNoticePart) and isinstance(fraud, FraudPart)
    assert isinstance(ledger, LedgerPart)
    # A real notice: the notices part hears the suspension and writes its webhook notice.
    changes = await ledger.ledger.set_status(S1, SubscriberStatus.SUSPENDED, clock.now())
    await notices.counters_changed(changes)
    assert await db["sub_notices"].count_documents({"supi": S1, "kind": "suspended"}) == 1
    # Many more, older; one of another brand's (a stale record) and another subscriber's.
    await notices.outbox.insert([_notice(i, S1, "lumen", clock) for i in range(30)])
    await notices.outbox.insert([_notice(99, S1, "harbor", clock),
                                 _notice(98, S2, "harbor", clock)])
    store = fraud.service.store
    await store.insert_cases([_case(1, S1, "lumen", clock),
                              _case(2, S1, "lumen", clock, status="false_positive"),
                              _case(3, S1, "harbor", clock), _case(4, S2, "harbor", clock)])

    c, _ = await _sign_in(app, LUMEN_KEY)
    r = await c.get(f"{C}/subscribers/{S1}")
    html = (await r.get_data()).decode()
    assert r.status_code == 200
    assert "Notifications" in html and 'aria-labelledby="h-notices"' in html
    # The suspension's notice is still to be sent; the seeded ones were delivered.
    assert len(NOTICE_ROW.findall(html)) == 1 + SIDE_LIST_MAX
    assert "your line is suspended" in html
    assert html.index("your line is suspended") < html.index('id="h-notices-done"')
    assert html.index("notice number 29") < html.index("notice number 28")  # newest first
    assert "notice number 10" in html and "notice number 09" not in html  # ... bounded
    assert "harbor notice" not in html  # brand-scoped
    assert "Webhook" in html and "delivered" in html
    assert "Fraud cases" in html and len(CASE_ROW.findall(html)) == 2
    assert "case-lumen-2" in html and "false_positive" in html
    assert html.index("case-lumen-2") < html.index("case-lumen-1")
    assert "case-harbor" not in html

    # The operator sees every record of the subscriber.
    admin, _ = await _sign_in(app, "demo-admin-key")
    html = (await (await admin.get(f"{C}/subscribers/{S1}")).get_data()).decode()
    assert "harbor notice number 99" in html and "case-harbor-3" in html
    assert "case-harbor-4" not in html and f"for {S2}" not in html
    # Another brand's agent still cannot open the page at all.
    h, _ = await _sign_in(app, HARBOR_KEY)
    r = await h.get(f"{C}/subscribers/{S1}")
    assert r.status_code == 404 and b"notice" not in await r.get_data()


async def test_sections_are_left_out_where_the_parts_are_off(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    # The test settings have no notice channel (no SMSC, no webhook); fraud off.
    off = settings.model_copy(update={"fraud": settings.fraud.model_copy(
        update={"enabled": False})})
    app = await make_app(off, db, clock)
    c, _ = await _sign_in(app, LUMEN_KEY)
    html = (await (await c.get(f"{C}/subscribers/{S1}")).get_data()).decode()
    assert "Buckets" in html
    assert 'id="h-notices"' not in html and "Fraud cases" not in html
    # Fraud on (the default), still no channel: the cases (none yet), no notices.
    on = create_app(settings, role="oam", db=db, clock=clock)
    c, _ = await _sign_in(on, LUMEN_KEY)
    html = (await (await c.get(f"{C}/subscribers/{S1}")).get_data()).decode()
    assert 'id="h-notices"' not in html
    assert "Fraud cases" in html and '<p>None.</p>' in _fraud_section(html)


def _fraud_section(html: str) -> str:
    start = html.index('id="fraud-cases"')
    return html[start:html.index("</section>", start)]
