"""Care API safety: ``Idempotency-Key`` on purchases and other creating POSTs, and API keys
given as digests or references and compared in constant time. Quart's test client on the
real database."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from nf.clock import FakeClock
from nf.config import Settings
from nf.errors import ConfigError
from nf.security.apikeys import KeyRing
from nf.store.mongo import Db
from nf.wiring import create_app

BASE = "/provisioning/v1"
LUMEN = {"X-API-Key": "demo-key-lumen"}
S1 = "imsi-001010000000931"
ADDON = "lumen-addon-1gb-7d"


@pytest.fixture
async def app(settings: Settings, db: Db, clock: FakeClock) -> Quart:
    a = create_app(settings, role="oam", db=db, clock=clock)
    for part in a.extensions["nf.parts"]:
        await part.ensure_indexes()
    r = await a.test_client().post(f"{BASE}/subscribers", headers=LUMEN, json={
        "supi": S1, "homeNetwork": "northwind", "planOfferId": "lumen-capped-2gb"})
    assert r.status_code == 201
    return a


async def addons(app: Quart) -> int:
    r = await app.test_client().get(f"{BASE}/subscribers/{S1}/balance", headers=LUMEN)
    assert r.status_code == 200
    return sum(1 for b in (await r.get_json())["buckets"] if b["offerId"] == ADDON)


async def buy(app: Quart, key: str | None, offer: str = ADDON) -> Any:
    headers = dict(LUMEN)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await app.test_client().post(f"{BASE}/subscribers/{S1}/purchases",
                                        json={"offerId": offer}, headers=headers)


async def test_a_retried_purchase_buys_once_and_gets_the_first_answer(
        app: Quart, db: Db) -> None:
    first = await buy(app, "care-7f3a")
    assert first.status_code == 201
    again = await buy(app, "care-7f3a")
    assert again.status_code == 201
    assert await again.get_json() == await first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await addons(app) == 1
    # Without a key (or with a new one) each POST is a new purchase.
    assert (await buy(app, "care-7f3b")).status_code == 201
    assert (await buy(app, None)).status_code == 201
    assert await addons(app) == 3


async def test_the_same_key_for_another_request_is_refused(app: Quart, db: Db) -> None:
    assert (await buy(app, "k1")).status_code == 201
    r = await buy(app, "k1", offer="lumen-addon-video-5gb-30d")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert (await r.get_json())["cause"] == "IDEMPOTENCY_KEY_REUSED"
    assert await addons(app) == 1


async def test_concurrent_requests_with_one_key_buy_once(app: Quart, db: Db) -> None:
    rs = await asyncio.gather(*(buy(app, "burst") for _ in range(8)))
    codes = sorted(r.status_code for r in rs)
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}, codes
    for r in rs:
        if r.status_code == 409:
            assert (await r.get_json())["cause"] == "IDEMPOTENCY_KEY_IN_USE"
            assert r.headers["Retry-After"] == "1"
    assert await addons(app) == 1


async def test_a_refusal_is_remembered_too_and_bad_keys_are_400(app: Quart) -> None:
    r = await buy(app, "nope", offer="no-such-offer")
    assert r.status_code == 422
    again = await buy(app, "nope", offer="no-such-offer")
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    r = await buy(app, "x" * 256)
    assert r.status_code == 400 and (await r.get_json())["invalidParams"][0]["param"] == \
        "Idempotency-Key"


async def test_keys_expire_by_ttl_index_after_at_least_a_day(app: Quart, db: Db,
                                                             settings: Settings) -> None:
    assert (await buy(app, "ttl")).status_code == 201
    doc = await db["idempotency_keys"].find_one({})
    assert doc is not None
    kept = (doc["expires_at"] - doc["created_at"]).total_seconds()
    assert kept == settings.care.idempotency_retention_s >= 86_400
    info = await db["idempotency_keys"].index_information()
    assert info["expires_at_ttl"]["expireAfterSeconds"] == 0


def test_keys_by_digest_env_and_file_compare_without_the_plain_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("NF_TEST_CARE_KEY", "from-env")
    digest = hashlib.sha256(b"from-digest").hexdigest()
    ring = KeyRing.from_settings({f"sha256:{digest}": "lumen", "env:NF_TEST_CARE_KEY": "*",
                                  f"file:{secret_file}": "harbor", "plain": "tidal"})
    assert ring.brand("from-digest") == "lumen"
    assert ring.brand("from-env") == "*"
    assert ring.brand("from-a-file") == "harbor"
    assert ring.brand("plain") == "tidal"
    assert ring.brand(f"sha256:{digest}") is None  # the digest itself is no key
    assert ring.brand("from-digesT") is None and ring.brand("") is None
    assert all(len(d) == 32 for d, _ in ring.entries)  # only digests are kept
    with pytest.raises(ConfigError, match="NF_TEST_MISSING"):
        KeyRing.from_settings({"env:NF_TEST_MISSING": "lumen"})
    with pytest.raises(ConfigError, match="cannot read"):
        KeyRing.from_settings({f"file:{tmp_path}/absent": "lumen"})


async def test_a_hashed_key_works_over_the_api(settings: Settings, db: Db,
                                               clock: FakeClock) -> None:
    digest = hashlib.sha256(b"s3cret-lumen").hexdigest()
    s = settings.model_copy(update={"api_keys": {f"sha256:{digest}": "lumen"}})
    a = create_app(s, role="oam", db=db, clock=clock)
    c = a.test_client()
    r = await c.get(f"{BASE}/brands/lumen/offers", headers={"X-API-Key": "s3cret-lumen"})
    assert r.status_code == 200
    r = await c.get(f"{BASE}/brands/lumen/offers", headers={"X-API-Key": digest})
    assert r.status_code == 401
    # The reports and subscriber notices check keys the same way (past the key: an
    # unknown report is 400, an unknown subscriber 404).
    for path, past_the_key in ((f"{BASE}/reports/no-such-report", 400),
                               (f"{BASE}/subscribers/{S1}/notifications", 404)):
        r = await c.get(path, headers={"X-API-Key": "s3cret-lumen"})
        assert r.status_code == past_the_key, path
        for wrong in (digest, f"sha256:{digest}"):
            r = await c.get(path, headers={"X-API-Key": wrong})
            assert r.status_code == 401, (path, wrong)
