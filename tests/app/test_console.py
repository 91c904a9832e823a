"""The care console through Quart's test client, on the real database: sessions, CSRF,
brand scope, cookie flags, confirmed and audited actions through the ledger."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from nf.clock import FakeClock
from nf.config import Settings
from nf.store.mongo import Db
from nf.wiring import create_app

BASE = "/provisioning/v1"
C = "/console"
LUMEN_KEY = "demo-key-lumen"
HARBOR_KEY = "demo-key-harbor"
S1 = "imsi-001010000000901"
S2 = "imsi-001010000000902"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HTML = {"Accept": "text/html,application/xhtml+xml"}


def live_clock() -> FakeClock:
    """A fake clock that starts at the wall time: the database's TTL monitor drops console
    sessions by the wall clock, and would drop one made on the default clock's date at its
    next pass, in the middle of a test."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def clock() -> FakeClock:
    return live_clock()


def browser(app: Quart) -> QuartClient:
    """A test client that asks for pages, as a browser does."""
    c = app.test_client()
    open_ = c.open

    async def open_html(*args: Any, **kwargs: Any) -> Any:
        kwargs["headers"] = {**HTML, **(kwargs.get("headers") or {})}
        return await open_(*args, **kwargs)

    c.open = open_html  # type: ignore[method-assign]
    return c


@pytest.fixture
async def app(settings: Settings, db: Db, clock: FakeClock) -> Quart:
    return await make_app(settings, db, clock)


async def make_app(settings: Settings, db: Db, clock: FakeClock) -> Quart:
    """The OAM app with its indexes, S1 (lumen, capped plan) and S2 (harbor)."""
    a = create_app(settings, role="oam", db=db, clock=clock)
    for part in a.extensions["nf.parts"]:
        await part.ensure_indexes()
    c = a.test_client()
    for supi, brand, gpsi in ((S1, "lumen", "msisdn-15550000901"),
                              (S2, "harbor", "msisdn-15550000902")):
        r = await c.post(f"{BASE}/subscribers", headers={"X-API-Key": "demo-admin-key"},
                         json={"supi": supi, "brand": brand, "homeNetwork": "northwind",
                               "planOfferId": f"{brand}-capped-2gb"
                               if brand == "lumen" else None, "gpsi": gpsi})
        assert r.status_code == 201, await r.get_data()
    return a


async def _csrf(c: QuartClient, path: str) -> str:
    r = await c.get(path)
    m = CSRF.search((await r.get_data()).decode())
    assert m is not None, path
    return m.group(1)


async def _sign_in(app: Quart, key: str) -> tuple[QuartClient, str]:
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": key})
    assert r.status_code == 302, await r.get_data()
    return c, await _csrf(c, f"{C}/find")


async def _status(db: Db, supi: str) -> str:
    d = await db["ledger_wallets"].find_one({"members.supi": supi})
    assert d is not None
    return str(next(m["st"] for m in d["members"] if m["supi"] == supi))


async def test_no_page_or_action_without_a_session(app: Quart, db: Db) -> None:
    c = browser(app)
    for path in ("/", "/find", f"/subscribers/{S1}", "/overview",
                 f"/subscribers/{S1}/confirm?action=block"):
        r = await c.get(C + path)
        assert r.status_code == 302, path
        assert r.headers["Location"].startswith(f"{C}/sign-in"), path
    r = await c.post(f"{C}/subscribers/{S1}/actions", form={"action": "block", "csrf": "x"})
    assert r.status_code == 401
    assert await _status(db, S1) == "active"
    # A session cookie signed with another secret is no session.
    c.set_cookie("localhost", "nf_console", "eyJraWQiOiJ4In0.forged.sig", path=C)
    r = await c.get(f"{C}/find")
    assert r.status_code == 302
    # A client that does not ask for pages gets ProblemDetails.
    r = await app.test_client().get(f"{C}/subscribers/{S1}")
    assert r.status_code == 401 and r.mimetype == "application/problem+json"
    r = await app.test_client().post(f"{C}/subscribers/{S1}/actions", form={"action": "block"})
    assert r.status_code == 401 and (await r.get_json())["cause"]


async def test_bad_key_is_refused_and_sign_in_needs_csrf(app: Quart) -> None:
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": "not-a-key"})
    assert r.status_code == 401 and b"not valid" in await r.get_data()
    r = await c.post(f"{C}/sign-in", form={"key": LUMEN_KEY})
    assert r.status_code == 403
    r = await c.get(f"{C}/find")
    assert r.status_code == 302


async def test_cookie_flags(app: Quart) -> None:
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": LUMEN_KEY})
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("nf_console=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/console" in cookie and "Expires=" in cookie
    assert LUMEN_KEY not in cookie
    r = await c.get(f"{C}/find")
    assert r.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_csrf_token_required_on_actions(app: Quart, db: Db) -> None:
    c, token = await _sign_in(app, LUMEN_KEY)
    url = f"{C}/subscribers/{S1}/actions"
    r = await c.post(url, form={"action": "block"})
    assert r.status_code == 403
    r = await c.post(url, form={"action": "block", "csrf": token[:-1] + "x"})
    assert r.status_code == 403
    assert await _status(db, S1) == "active"
    # Another session's token is not this session's.
    _, other = await _sign_in(app, LUMEN_KEY)
    r = await c.post(url, form={"action": "block", "csrf": other})
    assert r.status_code == 403
    assert await _status(db, S1) == "active"
    assert await db["console_audit"].count_documents({}) == 0


async def test_brand_key_cannot_see_or_act_on_another_brand(app: Quart, db: Db) -> None:
    c, token = await _sign_in(app, LUMEN_KEY)
    r = await c.get(f"{C}/subscribers/{S2}")
    assert r.status_code == 404
    body = await r.get_data()
    assert b"no subscriber" in body and b"harbor" not in body
    r = await c.get(f"{C}/find?q=msisdn-15550000902")
    assert r.status_code == 404
    r = await c.get(f"{C}/find?q={S2}")
    assert r.status_code == 404
    r = await c.get(f"{C}/subscribers/{S2}/confirm?action=block")
    assert r.status_code == 404
    r = await c.post(f"{C}/subscribers/{S2}/actions", form={"action": "block", "csrf": token})
    assert r.status_code == 404
    assert await _status(db, S2) == "active"
    # Nor buy another brand's offer for its own subscriber.
    r = await c.get(f"{C}/subscribers/{S1}/confirm?action=buy&offer=harbor-addon-1gb-7d")
    assert r.status_code == 404
    # The overview is the operator's.
    r = await c.get(f"{C}/overview")
    assert r.status_code == 403


async def test_find_view_buy_block_audited(app: Quart, db: Db) -> None:
    c, token = await _sign_in(app, LUMEN_KEY)
    r = await c.get(f"{C}/find?q=15550000901")
    assert r.status_code == 302 and r.headers["Location"] == f"{C}/subscribers/{S1}"
    r = await c.get(f"{C}/subscribers/{S1}")
    html = (await r.get_data()).decode()
    assert r.status_code == 200
    assert "2 GB monthly, stops at the cap" in html  # the plan, by its name
    assert "class=\"bar\"" in html and "<svg" in html
    assert f'href="{C}/subscribers/{S1}"' in html  # recently viewed
    r = await c.get(f"{C}/subscribers/{S1}/confirm?action=buy&offer=lumen-addon-1gb-7d")
    assert r.status_code == 200 and b"Buy 1 GB for 7 days" in await r.get_data()
    r = await c.post(f"{C}/subscribers/{S1}/actions",
                     form={"action": "buy", "offer": "lumen-addon-1gb-7d", "csrf": token})
    assert r.status_code == 302
    bal = await app.test_client().get(f"{BASE}/subscribers/{S1}/balance",
                                      headers={"X-API-Key": LUMEN_KEY})
    offers = [b["offerId"] for b in (await bal.get_json())["buckets"]]
    assert "lumen-addon-1gb-7d" in offers
    r = await c.post(f"{C}/subscribers/{S1}/actions", form={"action": "block", "csrf": token})
    assert r.status_code == 302 and await _status(db, S1) == "blocked"
    audit: list[dict[str, Any]] = await db["console_audit"].find({}).sort(
        "at", 1).to_list(None)
    assert sorted(a["action"] for a in audit) == ["block", "buy"]
    assert all(a["supi"] == S1 and len(a["key_id"]) == 12 for a in audit)
    assert LUMEN_KEY not in str(audit)


async def test_admin_overview_and_sign_out(app: Quart) -> None:
    c, token = await _sign_in(app, "demo-admin-key")
    r = await c.get(f"{C}/overview")
    html = (await r.get_data()).decode()
    assert r.status_code == 200 and "northwind" in html and "lumen" in html
    r = await c.get(f"{C}/subscribers/{S2}")
    assert r.status_code == 200
    r = await c.post(f"{C}/sign-out", form={"csrf": token})
    assert r.status_code == 302
    r = await c.get(f"{C}/overview")
    assert r.status_code == 302


async def test_static_css_is_served(app: Quart) -> None:
    r = await app.test_client().get(f"{C}/static/console.css")
    assert r.status_code == 200 and b".bar" in await r.get_data()


async def test_suspend_reactivate_and_remove_a_family_member(app: Quart, db: Db) -> None:
    prov = app.test_client()
    lumen = {"X-API-Key": LUMEN_KEY}
    kid = "imsi-001010000000903"
    r = await prov.post(f"{BASE}/subscribers", headers=lumen,
                        json={"supi": kid, "homeNetwork": "northwind"})
    assert r.status_code == 201
    r = await prov.post(f"{BASE}/groups", headers=lumen,
                        json={"ownerSupi": S1, "offerId": "lumen-family-30gb"})
    assert r.status_code == 201, await r.get_data()
    gid = (await r.get_json())["groupId"]
    r = await prov.post(f"{BASE}/groups/{gid}/members", headers=lumen,
                        json={"supi": kid, "capMb": 1024})
    assert r.status_code == 201
    c, token = await _sign_in(app, LUMEN_KEY)
    html = (await (await c.get(f"{C}/subscribers/{S1}")).get_data()).decode()
    assert f"Family group {gid}" in html and kid in html and "1.00 GB" in html
    act = f"{C}/subscribers/{S1}/actions"
    # Only members of this subscriber's own group can be removed.
    r = await c.post(act, form={"action": "remove-member", "member": S2, "csrf": token})
    assert r.status_code == 404
    r = await c.get(f"{C}/subscribers/{S1}/confirm?action=remove-member&member={kid}")
    assert r.status_code == 200 and f"Remove {kid}".encode() in await r.get_data()
    r = await c.post(act, form={"action": "remove-member", "member": kid, "csrf": token})
    assert r.status_code == 302
    g = await (await prov.get(f"{BASE}/groups/{gid}", headers=lumen)).get_json()
    assert [m["supi"] for m in g["members"]] == [S1]
    for action, status in (("suspend", "suspended"), ("reactivate", "active")):
        r = await c.post(act, form={"action": action, "csrf": token})
        assert r.status_code == 302 and await _status(db, S1) == status
    r = await c.post(act, form={"action": "delete-everything", "csrf": token})
    assert r.status_code == 400
    actions = sorted([a["action"] async for a in db["console_audit"].find({"supi": S1})])
    assert actions == ["reactivate", "remove-member", "suspend"]
