"""Seeded simulation of several SMF sessions of one subscriber charging at once, with
retransmissions and late requests, until the plan's cap. After every run the money adds up:
what the ledger debited, what the EDRs say and what the SMFs reported are the same, and no
grant ever exceeded what was left. A failing seed replays exactly."""

from __future__ import annotations

import asyncio
import random

import pytest

from nf.clock import FakeClock
from nf.config import Settings
from nf.store.mongo import Db
from tests.chf.harness import MIB, Nf, build, settled, with_grant
from tests.ledger import helpers as h
from tests.smf_sim import SmfSim, Usage, unit_info

SUPI = "imsi-001010000000555"
QUOTA = 10 * MIB  # t-capped: 10 MiB, blocks at the cap


async def balance(nf: Nf) -> tuple[int, int]:
    bal = await nf.ledger.balance(SUPI, nf.clock.now())
    assert bal is not None
    return (sum(b.used_bytes for b in bal.buckets if b.kind == "plan"),
            sum(b.reserved_bytes for b in bal.buckets))


async def run_session(nf: Nf, smf: SmfSim, rng: random.Random) -> tuple[int, int]:
    """One SMF's session; returns (bytes reported in accepted requests, requests accepted)."""
    reported, accepted = 0, 0
    ex = await smf.create()
    assert ex.status == 201
    accepted += 1
    refused = unit_info(ex.response, 10)["resultCode"] != "SUCCESS"
    for _ in range(40):
        if refused:
            break
        action = rng.random()
        if action < 0.15:
            again = await smf.retransmit()
            assert (again.status, again.response) == (smf.exchanges[-2].status,
                                                      smf.exchanges[-2].response)
            continue
        if action < 0.25 and smf.isn > 0:
            keep = smf.isn
            smf.isn = rng.randrange(0, keep) - 1  # the next request reuses an older number
            late = await smf.update(Usage(MIB, 0))
            assert late.status == 400
            smf.isn = keep
            continue
        used = rng.randint(0, smf.granted)
        ex = await smf.update(Usage(used // 2, used - used // 2, "QUOTA_THRESHOLD"))
        assert ex.status == 200
        reported += used
        accepted += 1
        used_now, reserved_now = await balance(nf)
        assert used_now + reserved_now <= QUOTA
        # This session's grant is held for it and never more than what is left.
        assert smf.granted <= reserved_now and smf.granted <= QUOTA - used_now
        refused = unit_info(ex.response, 10)["resultCode"] != "SUCCESS"
        await asyncio.sleep(rng.random() / 100)
    last = rng.randint(0, smf.granted)
    ex = await smf.release(Usage(last, 0, "FINAL"))
    assert ex.status == 204
    smf.granted = 0
    assert (await smf.retransmit()).status == 204
    return reported + last, accepted + 1


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_concurrent_sessions_add_up(seed: int, settings: Settings, db: Db,
                                          clock: FakeClock) -> None:
    rng = random.Random(seed)
    s = with_grant(settings.model_copy(update={"catalog_dir": h.TEST_CATALOG}), MIB)
    async for nf in build(s, db, clock):
        await h.subscriber(nf.ledger, clock.now(), SUPI, "t-capped", brand="testco")
        sims = [nf.smf(SUPI, pdu_session_id=i + 1) for i in range(3)]
        results = await asyncio.gather(*(
            run_session(nf, smf, random.Random(rng.random())) for smf in sims))
        reported = sum(r for r, _ in results)
        accepted = sum(a for _, a in results)
        used, reserved = await balance(nf)
        assert used == reported <= QUOTA
        assert reserved == 0
        await settled(nf.db)  # the EDRs leave after the answers
        records = [d async for d in nf.db["edrs"].find({"supi": SUPI})]
        assert len(records) == accepted
        assert sum(r["used_total"] for r in records) == reported
        assert any(r["result"] == "QUOTA_LIMIT_REACHED" for r in records)  # the cap was hit
        assert await nf.db["charging_sessions"].count_documents({"status": "open"}) == 0
