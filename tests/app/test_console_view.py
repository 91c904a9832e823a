"""What the subscriber page says, against the real database: each notice's status with its
due or sent time, charging sessions as of their latest update, offer names and prices,
times in the brand's zone, empty lists, fraud events, the bounded event list, and the
sign-in form when sign-in is refused."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from quart import Quart
from quart.testing import QuartClient

from nf.clock import FakeClock
from nf.config import BrandNotices, NoticeSettings, Settings
from nf.edr.records import Party, fraud_record, status_record
from nf.ledger.part import LedgerPart
from nf.store.mongo import Db
from nf.subnotify.holder import this_process
from nf.subnotify.part import SubNoticePart
from nf.wiring import create_app
from tests.app.test_console import LUMEN_KEY, S1, C, _csrf, _sign_in, browser, make_app
from tests.chf.harness import build, settled
from tests.smf_sim import Usage

MADRID = BrandNotices(time_zone="Europe/Madrid", webhook_url="http://127.0.0.1:9/hooks",
                      webhook_secret="s" * 32, webhook_enabled=True)
NOTICE = re.compile(r'<li class="notice">(.*?)</li>', re.S)
EVENT = re.compile(r'<li class="event">(.*?)</li>', re.S)
CHARGING = re.compile(r'<tr class="charging"><td>([^<]+)</td><td class="charging-host">'
                      r'([^<]+)</td><td class="charging-plmn">([^<]+)</td>'
                      r'<td class="charging-requests">(\d+)</td></tr>')
TAGS = re.compile(r"<[^>]+>")


def _madrid(settings: Settings) -> Settings:
    return settings.model_copy(update={"notices": NoticeSettings(brands={"lumen": MADRID})})


def _text(html: str) -> str:
    return " ".join(TAGS.sub(" ", html).split())


def _section(html: str, heading_id: str, end: str = "</section>") -> str:
    start = html.index(f'id="{heading_id}"')
    return html[start:html.index(end, start)]


async def _page(c: QuartClient, supi: str = S1) -> str:
    r = await c.get(f"{C}/subscribers/{supi}")
    assert r.status_code == 200
    return (await r.get_data()).decode()


async def test_notices_show_their_status_and_the_due_or_sent_time(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    app = await make_app(_madrid(settings), db, clock)
    parts = app.extensions["nf.parts"]
    notices = next(p for p in parts if isinstance(p, SubNoticePart))
    ledger = next(p for p in parts if isinstance(p, LedgerPart)).ledger
    # A real add-on purchase: its notice now, and two reminders for later (the expiry
    # is 7 days away; "expiring" is due a day before).
    await notices.counters_changed(await ledger.purchase(S1, "lumen-addon-1gb-7d",
                                                         clock.now()))
    states = {d["kind"]: d["state"] async for d in db["sub_notices"].find({"supi": S1})}
    assert states == {"addon_purchased": "queued", "addon_expiring": "scheduled",
                      "addon_expired": "scheduled"}
    # The purchase notice goes out (webhook answered 2xx) a minute later.
    clock.advance(60)
    [claimed] = await notices.outbox.claim("webhook", clock.now(),
                                                 this_process("test"))
    assert claimed["kind"] == "addon_purchased"
    assert await notices.outbox.sent(claimed["_id"], clock.now())

    c, _ = await _sign_in(app, LUMEN_KEY)
    html = await _page(c)
    waiting = _section(html, "h-notices-waiting", 'id="h-notices-done"')
    sent = _section(html, "h-notices-done")
    due = [_text(x) for x in NOTICE.findall(waiting)]
    # Scheduled reminders: their status and when they are due, in the brand's time zone
    # (2026-01-07 00:00 UTC is 01:00 in Madrid), soonest first.
    assert len(due) == 2, due
    assert due[0].startswith("addon_expiring Webhook · scheduled · due 2026-01-07 01:00 CET")
    assert due[1].startswith("addon_expired Webhook · scheduled · due 2026-01-08 01:00 CET")
    done = [_text(x) for x in NOTICE.findall(sent)]
    assert len(done) == 1 and done[0].startswith(
        "addon_purchased Webhook · delivered · delivered 2026-01-01 01:01 CET"), done
    assert "addon_expiring" not in sent
    assert '<time datetime="2026-01-07T00:00:00Z">' in waiting

    # A notice that failed says so, and why.
    clock.advance(7 * 86_400)
    [expiring] = await notices.outbox.claim("webhook", clock.now(),
                                                 this_process("test"))
    await notices.outbox.finish(expiring["_id"], clock.now(), "failed", error="HTTP 410")
    c, _ = await _sign_in(app, LUMEN_KEY)  # a week later: a new session
    sent = _section(await _page(c), "h-notices-done")
    done = [_text(x) for x in NOTICE.findall(sent)]
    assert len(done) == 2 and "scheduled" not in _text(sent)
    assert any(x.startswith("addon_expiring Webhook · failed · failed 2026-01-08 01:01 CET "
                            "· HTTP 410") for x in done), done


async def test_charging_sessions_show_the_latest_update(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    oam = await make_app(settings, db, clock)
    async for nf in build(settings, db, clock):
        smf = nf.smf(S1)
        assert (await smf.create()).status == 201
        for _ in range(3):
            assert (await smf.update(Usage(1000, 1000, "QUOTA_THRESHOLD"))).status == 200
        # The SMF now reports the subscriber served by a partner's network.
        smf.serving_plmn = "00102"
        assert (await smf.update(Usage(1000, 1000, "QUOTA_THRESHOLD"))).status == 200
        assert smf.ref is not None
        stored = await db["charging_sessions"].find_one({"_id": smf.ref})
        assert stored is not None and stored["isn"] == 0  # the document is as of the create
        c, _ = await _sign_in(oam, LUMEN_KEY)
        rows = CHARGING.findall(await _page(c))
        assert rows == [(smf.ref, "northwind", "00102 (roaming)", "4")], rows


async def test_offer_names_prices_and_local_times(settings: Settings, db: Db,
                                                  clock: FakeClock) -> None:
    app = await make_app(_madrid(settings), db, clock)
    async with app.test_app():  # its workers store the purchase's EDR
        c, token = await _sign_in(app, LUMEN_KEY)
        html = await _page(c)
        status = _text(_section(html, "h-status"))
        assert "Plan 2 GB monthly, stops at the cap (v1)" in status
        assert "Period 2026-01-01 01:00 CET →" in status  # not 2026-01-01T00:00:00Z
        assert "T00:00:00Z" not in _text(html)
        assert "2 GB monthly, stops at the cap" in _text(_section(html, "h-buckets"))
        r = await c.get(f"{C}/subscribers/{S1}/confirm?action=buy&offer=lumen-addon-1gb-7d")
        confirm = _text((await r.get_data()).decode())
        assert r.status_code == 200
        assert f"Buy 1 GB for 7 days (3.00 USD) for {S1}?" in confirm, confirm
        assert f"Yes, buy 1 GB for 7 days (3.00 USD) for {S1}" in confirm
        r = await c.post(f"{C}/subscribers/{S1}/actions",
                         form={"action": "buy", "offer": "lumen-addon-1gb-7d", "csrf": token})
        assert r.status_code == 302
        await settled(db)  # the purchase's EDR is written after the answer
        for _ in range(200):
            if await db["edrs"].count_documents({"supi": S1, "kind": "purchase",
                                                 "offer_id": "lumen-addon-1gb-7d"}):
                break
            await asyncio.sleep(0.05)
        html = await _page(c)
    assert "buy 1 GB for 7 days · key" in _text(_section(html, "h-audit"))
    assert "purchase purchase · 1 GB for 7 days (3.00 USD)" in _text(_section(html, "h-edrs"))


async def test_empty_lists_are_said_not_numbered(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    app = await make_app(settings, db, clock)
    c, _ = await _sign_in(app, LUMEN_KEY)
    html = await _page(c)
    for heading in ("h-edrs", "h-fraud", "h-audit"):
        part = _section(html, heading)
        assert "<li>" not in part and "<ol" not in part, heading  # no "1. None."
    assert "<p>None.</p>" in _section(html, "h-audit")
    assert "<p>No events yet.</p>" in _section(html, "h-edrs")


async def test_fraud_events_read_whole_and_the_event_list_is_bounded(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    app = await make_app(settings, db, clock)
    c, _ = await _sign_in(app, LUMEN_KEY)
    party = Party(supi=S1, brand="lumen")
    t0 = clock.now()
    await db["edrs"].insert_many(
        [status_record(time=t0 + timedelta(minutes=i), party=party,
                       status="active", status_before="active") for i in range(30)]
        + [fraud_record(event="detected", time=t0 + timedelta(hours=1), party=party,
                        rule="multi_network", case_id="case-1", action="throttle")])
    html = await _page(c)
    events = [_text(x) for x in EVENT.findall(_section(html, "h-edrs"))]
    assert len(events) == settings.console.edr_timeline_max == 20
    assert events[0] == ("2026-01-01 01:00 UTC fraud detected · rule multi_network · "
                         "action throttle · case case-1"), events[0]
    assert all("· ·" not in e and not e.endswith("·") for e in events), events
    assert "The newest 20; 11 older not shown" in _text(_section(html, "h-edrs"))


async def test_a_refused_sign_in_offers_the_sign_in_form(settings: Settings, db: Db,
                                                         clock: FakeClock) -> None:
    s = settings.model_copy(update={"console": settings.console.model_copy(
        update={"sign_in_max_failures": 2})})
    app: Quart = create_app(s, role="oam", db=db, clock=clock)
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    for i in range(2):
        r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": "wrong-key"})
        assert r.status_code == 401, i
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": "wrong-key"})
    body = (await r.get_data()).decode()
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert "Too many attempts" in body and "try again in" in body
    assert 'name="key"' in body and "Find a subscriber" not in body
    # The form works once the wait is over (its CSRF token is this session's).
    clock.advance(int(r.headers["Retry-After"]) + 1)
    token = _csrf_of(body)
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": LUMEN_KEY})
    assert r.status_code == 302
    # A form that expired (a bad CSRF token) also leads back to the form.
    other = browser(app)
    r = await other.post(f"{C}/sign-in", form={"csrf": "stale", "key": LUMEN_KEY})
    body = (await r.get_data()).decode()
    assert r.status_code == 403 and 'name="key"' in body and "Find a subscriber" not in body


def _csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m is not None
    return m.group(1)
