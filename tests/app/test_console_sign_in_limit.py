"""Sign-in attempt limits: hammering wrong keys gets a 429 with Retry-After (per client
address and per presented key), a lockout is logged and counted, and a correct key works
again once the lockout is over (injected clock)."""

from __future__ import annotations

import logging

import pytest
from quart import Quart

from nf.clock import FakeClock
from nf.config import Settings
from nf.runtime import Runtime
from nf.sbi.app import create_app
from nf.store.mongo import Db
from tests.app.test_console import LUMEN_KEY, C, _csrf, browser

MAX = 10  # the default: 10 failures a minute, then locked out for a minute


def _app(settings: Settings, db: Db, clock: FakeClock, **console: object) -> Quart:
    s = settings.model_copy(update={"console": settings.console.model_copy(update=console)})
    return create_app(s, role="oam", db=db, clock=clock)


def _metric(app: Quart, name: str, **labels: str) -> float:
    rt: Runtime = app.extensions["nf.runtime"]
    return rt.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_wrong_keys_from_one_address_lock_it_out_for_a_while(
        settings: Settings, db: Db, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    app = _app(settings, db, clock)
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    for i in range(MAX):
        r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": f"guess-{i}"})
        assert r.status_code == 401, i
        clock.advance(1)
    assert _metric(app, "nf_console_sign_in_failures_total") == MAX
    assert _metric(app, "nf_console_sign_in_lockouts_total", by="address") == 1
    locked = [r for r in caplog.records if r.getMessage() == "console sign-in locked out"]
    assert len(locked) == 1 and locked[0].levelno == logging.WARNING
    assert LUMEN_KEY not in caplog.text and "guess-" not in caplog.text
    # Locked out: even the right key is refused, with a page saying when to come back.
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": LUMEN_KEY})
    body = (await r.get_data()).decode()
    assert r.status_code == 429 and "Too many attempts" in body and 'role="alert"' in body
    assert 55 <= int(r.headers["Retry-After"]) <= 60
    assert (await c.get(f"{C}/find")).status_code == 302  # not signed in
    # A script (no HTML) gets ProblemDetails.
    prob = app.test_client()
    ptoken = await _csrf(prob, f"{C}/sign-in")
    r = await prob.post(f"{C}/sign-in", form={"csrf": ptoken, "key": LUMEN_KEY})
    assert r.status_code == 429 and r.mimetype == "application/problem+json"
    assert (await r.get_json())["cause"] == "TOO_MANY_REQUESTS" and r.headers["Retry-After"]
    assert _metric(app, "nf_console_sign_in_limited_total") == 2
    # Still locked a second before the end, free after it.
    clock.advance(int(r.headers["Retry-After"]) - 1)
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": LUMEN_KEY})
    assert r.status_code == 429
    clock.advance(1)
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": LUMEN_KEY})
    assert r.status_code == 302, await r.get_data()
    assert (await c.get(f"{C}/find")).status_code == 200


async def test_one_wrong_key_from_many_addresses_is_locked_out_not_the_others(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    app = _app(settings, db, clock, client_address_header="X-Forwarded-For")
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")

    async def sign_in(key: str, address: str) -> int:
        r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": key},
                         headers={"X-Forwarded-For": f"{address}, 10.0.0.1"})
        return r.status_code

    for i in range(MAX):
        assert await sign_in("stale-key", f"192.0.2.{i}") == 401
    assert _metric(app, "nf_console_sign_in_lockouts_total", by="key") == 1
    assert _metric(app, "nf_console_sign_in_lockouts_total", by="address") == 0
    assert await sign_in("stale-key", "192.0.2.200") == 429
    # Other keys and these addresses are not locked out.
    assert await sign_in("another-wrong-key", "192.0.2.201") == 401
    assert await sign_in(LUMEN_KEY, "192.0.2.1") == 302


async def test_few_failures_are_forgiven_after_the_window(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    app = _app(settings, db, clock, sign_in_max_failures=3, sign_in_window_s=60)
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    for _ in range(3):
        for _ in range(2):  # two typos a minute, for three minutes: never locked out
            r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": "typo"})
            assert r.status_code == 401
        clock.advance(61)
    assert _metric(app, "nf_console_sign_in_lockouts_total", by="address") == 0
