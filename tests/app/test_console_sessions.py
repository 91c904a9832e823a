"""Console sessions are kept on the server: a copy of the cookie is worth nothing after
sign-out, a session ends after idle time and after its absolute lifetime (injected clock),
an admin signs out everyone of a brand, and a rotated or removed key ends its sessions.
Quart's test client on the real database."""

from __future__ import annotations

import pytest
from quart import Quart
from quart.testing import QuartClient

from nf.clock import FakeClock
from nf.config import Settings
from nf.store.mongo import Db
from nf.wiring import create_app
from tests.app.test_console import (
    BASE,
    HARBOR_KEY,
    LUMEN_KEY,
    C,
    _csrf,
    browser,
    live_clock,
    make_app,
)

ADMIN = {"X-API-Key": "demo-admin-key"}
SESSIONS = "console_sessions"


@pytest.fixture
def clock() -> FakeClock:
    return live_clock()


@pytest.fixture
async def app(settings: Settings, db: Db, clock: FakeClock) -> Quart:
    return await make_app(settings, db, clock)


def _with(settings: Settings, **console: object) -> Settings:
    return settings.model_copy(update={"console": settings.console.model_copy(update=console)})


async def _signed_in(app: Quart, key: str) -> tuple[QuartClient, str, str]:
    """A browser signed in with ``key``, its CSRF token and a copy of its cookie."""
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": key})
    assert r.status_code == 302, await r.get_data()
    cookie = next(h.split(";", 1)[0] for h in r.headers.getlist("Set-Cookie")
                  if h.startswith("nf_console="))
    return c, await _csrf(c, f"{C}/find"), cookie


async def _page(app: Quart, cookie: str, path: str = f"{C}/find") -> int:
    """What a fresh browser holding only ``cookie`` gets for ``path``."""
    r = await browser(app).get(path, headers={"Cookie": cookie})
    return r.status_code


async def test_a_copy_of_the_cookie_is_refused_after_sign_out(app: Quart, db: Db) -> None:
    c, token, copied = await _signed_in(app, LUMEN_KEY)
    assert await _page(app, copied) == 200  # the copy works while the session stands
    assert await db[SESSIONS].count_documents({}) == 1
    r = await c.post(f"{C}/sign-out", form={"csrf": token})
    assert r.status_code == 302
    assert await _page(app, copied) == 302  # to the sign-in page
    assert await db[SESSIONS].count_documents({}) == 0
    # A script holding the copy gets ProblemDetails, not a page.
    r = await app.test_client().get(f"{C}/find", headers={"Cookie": copied})
    assert r.status_code == 401 and r.mimetype == "application/problem+json"


async def test_the_cookie_holds_no_session_data_and_the_database_no_cookie(
        app: Quart, db: Db) -> None:
    _, _, copied = await _signed_in(app, LUMEN_KEY)
    d = await db[SESSIONS].find_one({})
    assert d is not None and d["scope"] == "lumen" and d["kid"] and d["csrf"]
    assert d["_id"] not in copied  # only the id's hash is stored


async def test_a_session_ends_after_idle_time_and_after_its_lifetime(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    app = await make_app(_with(settings, idle_timeout_s=600, session_ttl_s=3600), db, clock)
    _, _, idle = await _signed_in(app, LUMEN_KEY)
    _, _, busy = await _signed_in(app, HARBOR_KEY)
    clock.advance(590)
    assert await _page(app, busy) == 200
    clock.advance(9)
    assert await _page(app, idle) == 200  # 599 s idle: still there (and seen again now)
    clock.advance(500)
    assert await _page(app, busy) == 200  # seen at 590, 509 s ago
    clock.advance(100)
    assert await _page(app, idle) == 302  # 600 s since it was last seen
    # However busy, a session ends at its lifetime (3600 s after sign-in).
    for _ in range(6):
        clock.advance(400)
        assert await _page(app, busy) == 200  # at last 3599 s after sign-in
    clock.advance(1)
    assert await _page(app, busy) == 302
    assert await db[SESSIONS].count_documents({}) == 0


async def test_an_admin_signs_out_everyone_of_a_brand(app: Quart, db: Db) -> None:
    lumen = [(await _signed_in(app, LUMEN_KEY))[2] for _ in range(2)]
    _, _, harbor = await _signed_in(app, HARBOR_KEY)
    _, _, admin = await _signed_in(app, "demo-admin-key")
    api = app.test_client()
    path = f"{BASE}/brands/lumen/console-sessions"
    # Guarded like the provisioning API: a key, and only the admin's or the brand's own.
    r = await api.delete(path)
    assert r.status_code == 401 and r.mimetype == "application/problem+json"
    r = await api.delete(path, headers={"X-API-Key": HARBOR_KEY})
    assert r.status_code == 404 and (await r.get_json())["cause"] == "BRAND_NOT_FOUND"
    assert all([await _page(app, c) == 200 for c in [*lumen, harbor, admin]])
    r = await api.delete(path, headers=ADMIN)
    assert r.status_code == 200
    assert await r.get_json() == {"brand": "lumen", "signedOut": 2}
    assert [await _page(app, c) for c in lumen] == [302, 302]
    assert await _page(app, harbor) == 200 and await _page(app, admin) == 200
    # A brand's key signs out its own brand.
    r = await api.delete(f"{BASE}/brands/harbor/console-sessions",
                         headers={"X-API-Key": HARBOR_KEY})
    assert r.status_code == 200 and (await r.get_json())["signedOut"] == 1
    assert await _page(app, harbor) == 302 and await _page(app, admin) == 200
    # ``*``: the admin sessions, by the admin only.
    star = f"{BASE}/brands/*/console-sessions"
    r = await api.delete(star, headers={"X-API-Key": HARBOR_KEY})
    assert r.status_code == 404 and await _page(app, admin) == 200
    r = await api.delete(star, headers=ADMIN)
    assert r.status_code == 200 and (await r.get_json())["signedOut"] == 1
    assert await _page(app, admin) == 302


async def test_a_rotated_or_removed_key_ends_its_sessions(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    # A configured cookie secret: the cookie is good for every process of the NF.
    base = _with(settings, session_secret="console-test-secret")
    app = await make_app(base, db, clock)
    _, _, lumen = await _signed_in(app, LUMEN_KEY)
    _, _, harbor = await _signed_in(app, HARBOR_KEY)
    same = create_app(base, role="oam", db=db, clock=clock)
    assert await _page(same, lumen) == 200  # another process with the same keys
    # Lumen's key rotated (a new key, the old one gone); harbor's now names another brand.
    keys = {k: v for k, v in base.api_keys.items() if v not in ("lumen", "harbor")}
    keys |= {"demo-key-lumen-2": "lumen", HARBOR_KEY: "cartwheel"}
    rotated = create_app(base.model_copy(update={"api_keys": keys}), role="oam", db=db,
                         clock=clock)
    assert await _page(rotated, lumen) == 302
    assert await _page(rotated, harbor) == 302
    assert await db[SESSIONS].count_documents({}) == 0  # ended, not just refused
    assert await _page(same, lumen) == 302  # ended for every process
