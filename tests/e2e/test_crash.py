"""A crash right after the CHF answered: ``nf serve`` (every process of it) is SIGKILLed just
after the updates that cross a subscriber's cap and run a family pool dry were answered,
before any effect of them left the process. After a restart the SMF still receives both
throttles and the EDRs of both updates are stored: the effects were pending in the very
writes that charged the usage, and the new process's sweeper delivers them."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.care import Care
from tests.e2e.nfproc import running_nf
from tests.pcf.harness import ambr_of
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, Usage, httpx_transport

pytestmark = pytest.mark.e2e

GIB = 1024**3
LUMEN = {"X-API-Key": "demo-key-lumen"}
THROTTLED = {"uplink": "64 Kbps", "downlink": "128 Kbps"}


def _env(settings: Settings) -> dict[str, str]:
    # 8 GiB grants: the 15 GiB allowance and the 30 GiB pool are reached in a few updates.
    nets = [{**n.model_dump(), "default_grant_bytes": 8 * GIB} for n in settings.networks]
    return {"NF_NETWORKS": json.dumps(nets)}


async def _use(chg: SmfSim, total: int) -> int:
    """Report ``total`` bytes used, grant by grant; returns the last update's ISN."""
    left = total
    while left > 0:
        n = min(left, chg.granted)
        assert n > 0, "no grant left before the total was used"
        ex = await chg.update(Usage(n // 4, n - n // 4, "QUOTA_THRESHOLD"), requested=8 * GIB)
        assert ex.status == 200, ex.response
        left -= n
    return chg.isn


async def _edr(db: Any, record_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = await db["edrs"].find_one({"_id": record_id})
        if d is not None:
            return dict(d)
        await asyncio.sleep(0.2)
    raise AssertionError(f"EDR {record_id} never stored")


async def test_throttles_and_edrs_survive_sigkill_after_the_answer(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    solo, owner, kid = "imsi-001010000000501", "imsi-001010000000502", "imsi-001010000000503"
    dead = {**_env(settings),
            # Nothing leaves the first process: effects wait in the database only.
            "NF_EFFECTS__IMMEDIATE": "false", "NF_EFFECTS__SWEEP_GRACE_S": "3600"}
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=15) as client:
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=dead, new_session=True) as nf:
            care = Care(client, nf.oam, LUMEN)
            await care.subscriber(solo, plan="lumen-unlimited")
            for s in (owner, kid):
                await care.subscriber(s)
            await care.family(owner, "lumen-family-30gb", [kid])

            sims: dict[str, tuple[PolicySim, SmfSim]] = {}
            for s in (solo, owner, kid):
                pol = PolicySim(client, nf.sbi, s, smf.url(f"/smf/{s}"))
                assert (await pol.create()).status_code == 201
                chg = SmfSim(httpx_transport(client, nf.sbi), s,
                             notify_uri=smf.url(f"/chg/{s}"))
                assert (await chg.create(requested=8 * GIB)).status == 201
                sims[s] = (pol, chg)
            # The kid uses their 15 GiB cap, then the owner the rest of the 30 GiB pool;
            # the single subscriber reaches their 15 GiB full-speed allowance last.
            await _use(sims[kid][1], 15 * GIB)
            dry_isn = await _use(sims[owner][1], 15 * GIB)
            cap_isn = await _use(sims[solo][1], 15 * GIB)
            nf.kill_group()
        assert not smf.matching(lambda r: r.path.endswith("/update"))

        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=_env(settings)):
            for s in (solo, owner, kid):
                got = await smf.wait_for(lambda r, s=s: r.path == f"/smf/{s}/update",
                                         timeout_s=30)
                assert ambr_of(got) == THROTTLED, s
                assert got.json["resourceUri"] == sims[s][0].location
            client_db: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db_server.uri)
            try:
                db = client_db[settings.mongodb_database]
                for s, isn in ((solo, cap_isn), (owner, dry_isn)):
                    edr = await _edr(db, f"{sims[s][1].ref}:{isn}", 30)
                    assert edr["supi"] == s and edr["event"] == "update"
            finally:
                await client_db.close()
