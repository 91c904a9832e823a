"""Sign-in attempt limits: wrong keys from one address slow that address down (a growing,
bounded delay) but never lock it, so a colleague behind the same NAT still signs in; a key
tried too often is locked with a 429 and Retry-After, logged and counted; the delay is
forgotten after the window (injected clock: the delay is read from it)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from quart import Quart

from nf.clock import FakeClock
from nf.config import Settings
from nf.runtime import Runtime
from nf.store.mongo import Db
from nf.wiring import create_app
from tests.app.test_console import LUMEN_KEY, C, _csrf, browser, live_clock

MAX = 10  # the default: 10 failures of one key a minute, then locked for a minute


@pytest.fixture
def clock() -> FakeClock:
    return live_clock()


def _app(settings: Settings, db: Db, clock: FakeClock, **console: object) -> Quart:
    s = settings.model_copy(update={"console": settings.console.model_copy(update=console)})
    return create_app(s, role="oam", db=db, clock=clock)


def _metric(app: Quart, name: str, **labels: str) -> float:
    rt: Runtime = app.extensions["nf.runtime"]
    return rt.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_wrong_keys_from_one_address_slow_it_down_but_never_lock_it(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    # No client address header: every agent of the call centre has the proxy's address.
    app = _app(settings, db, clock)
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")

    async def sign_in(key: str) -> tuple[int, float]:
        before = clock.monotonic()
        r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": key})
        return r.status_code, clock.monotonic() - before

    waits = []
    for i in range(3 * MAX):  # each guess a different key: no key is locked
        status, waited = await sign_in(f"guess-{i}")
        assert status == 401, i
        waits.append(waited)
    assert waits[:8] == [0, 0.25, 0.5, 1, 2, 4, 8, 10]  # doubling from the first failure
    assert set(waits[8:]) == {10}  # bounded
    assert _metric(app, "nf_console_sign_in_failures_total") == 3 * MAX
    assert _metric(app, "nf_console_sign_in_delayed_total") == 3 * MAX - 1
    assert _metric(app, "nf_console_sign_in_lockouts_total", by="key") == 0
    assert _metric(app, "nf_console_sign_in_limited_total") == 0
    # The right key from the same address gets in, after the same bounded wait.
    assert await sign_in(LUMEN_KEY) == (302, 10)
    assert (await c.get(f"{C}/find")).status_code == 200
    # A minute after the address's last failure, no more wait.
    clock.advance(60)
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")
    assert await sign_in(LUMEN_KEY) == (302, 0)


async def test_a_key_tried_too_often_is_locked_not_the_addresses_or_other_keys(
        settings: Settings, db: Db, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    app = _app(settings, db, clock, client_address_header="X-Forwarded-For")
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")

    async def sign_in(key: str, address: str) -> int:
        r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": key},
                         headers={"X-Forwarded-For": f"{address}, 10.0.0.1"})
        return r.status_code

    for i in range(MAX):
        assert await sign_in("stale-key", f"192.0.2.{i}") == 401
        clock.advance(1)
    assert _metric(app, "nf_console_sign_in_lockouts_total", by="key") == 1
    locked = [r for r in caplog.records if r.getMessage() == "console sign-in locked out"]
    assert len(locked) == 1 and locked[0].levelno == logging.WARNING
    assert "stale-key" not in caplog.text
    # The key is locked, from any address, with a page saying when to come back.
    before = clock.monotonic()
    r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": "stale-key"},
                     headers={"X-Forwarded-For": "192.0.2.200"})
    body = (await r.get_data()).decode()
    assert r.status_code == 429 and "Too many attempts" in body and 'role="alert"' in body
    assert int(r.headers["Retry-After"]) == 59  # a minute from the failure that locked it
    assert clock.monotonic() == before  # refused at once, not after a wait
    # A script (no HTML) gets ProblemDetails.
    prob = app.test_client()
    ptoken = await _csrf(prob, f"{C}/sign-in")
    r = await prob.post(f"{C}/sign-in", form={"csrf": ptoken, "key": "stale-key"})
    assert r.status_code == 429 and r.mimetype == "application/problem+json"
    assert (await r.get_json())["cause"] == "TOO_MANY_REQUESTS" and r.headers["Retry-After"]
    assert _metric(app, "nf_console_sign_in_limited_total") == 2
    # Other keys and the same addresses are not locked out.
    assert await sign_in("another-wrong-key", "192.0.2.201") == 401
    # Free again once the lockout is over (and still wrong).
    clock.advance(58)
    assert await sign_in("stale-key", "192.0.2.202") == 429
    clock.advance(1)
    assert await sign_in("stale-key", "192.0.2.202") == 401
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
    assert _metric(app, "nf_console_sign_in_lockouts_total", by="key") == 0


class _HeldClock(FakeClock):
    """A fake clock whose sleeps last until the test lets them end."""

    def __init__(self, start: FakeClock) -> None:
        super().__init__(start.now())
        self.asleep = asyncio.Event()
        self.wake = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.asleep.set()
        await self.wake.wait()
        await super().sleep(seconds)


async def test_only_so_many_sign_ins_wait_at_once(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    held = _HeldClock(clock)
    app = _app(settings, db, held, sign_in_waiting_max=1)
    c = browser(app)
    token = await _csrf(c, f"{C}/sign-in")

    async def sign_in(key: str) -> tuple[int, str | None]:
        r = await c.post(f"{C}/sign-in", form={"csrf": token, "key": key})
        return r.status_code, r.headers.get("Retry-After")

    held.wake.set()
    assert await sign_in("guess-1") == (401, None)  # no wait before the first failure
    held.wake.clear()
    waiting = asyncio.create_task(sign_in("guess-2"))  # waits 0.25 s, held
    await asyncio.wait_for(held.asleep.wait(), timeout=10)
    # The one place to wait is taken: refused at once, told when to come back.
    assert await sign_in(LUMEN_KEY) == (429, "1")
    held.wake.set()
    assert await waiting == (401, None)
    assert await sign_in(LUMEN_KEY) == (302, None)  # the place is free again
