"""Seeded simulation: random purchases, cap crossings, boosts and time passing, with the
resulting counter changes delivered late, out of order and several times at once. Whatever
the interleaving, every SMF ends on the speed the ledger says now. A failing seed replays
exactly (``SEEDS``)."""

from __future__ import annotations

import asyncio
import random

import pytest

from nf.ledger.port import CounterChange
from nf.pcf.core import format_bitrate
from tests.ledger import helpers as h
from tests.pcf.harness import PCF_ROOT, Nf, context
from tests.peers import NotificationReceiver

SEEDS = list(range(1, 9))
SUPI = "imsi-001010000000501"


async def _drained(nf: Nf) -> None:
    for _ in range(300):
        if await nf.db["outbox"].count_documents({"status": "pending"}) == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the outbox did not drain")


@pytest.mark.parametrize("seed", SEEDS)
async def test_smfs_end_on_the_ledgers_current_speed(nf: Nf, seed: int) -> None:
    rng = random.Random(seed)
    await h.unlimited(nf.ledger, nf.clock.now(), SUPI)
    async with NotificationReceiver() as smf:
        paths = []
        for i in range(2):
            r = await nf.client.post(f"{PCF_ROOT}/sm-policies",
                                     json=context(SUPI, smf.url(f"/smf{i}/p"), pdu_session_id=i))
            assert r.status_code == 201
            paths.append(f"/smf{i}/p/update")
        held: list[CounterChange] = []
        session = 0
        for _step in range(16):
            now = nf.clock.now()
            op = rng.choice(["cap", "addon", "boost", "time", "deliver"])
            if op == "cap":
                session += 1
                first = await nf.ledger.charge(h.step(SUPI, now, requested=16 * 1024**3,
                                                      session=f"s{session}", seq=1))
                used = await nf.ledger.charge(h.step(SUPI, now, used=first.granted_bytes,
                                                     session=f"s{session}", seq=2))
                held += [*first.counter_changes, *used.counter_changes]
            elif op == "addon":
                held += await nf.ledger.purchase(SUPI, h.DEMO_ADDON, now)
            elif op == "boost":
                held += await nf.ledger.purchase(SUPI, h.DEMO_BOOST, now)
            elif op == "time":
                nf.clock.advance(rng.choice([600, 1800, 3600]))
                await nf.pcf.service.revalidate_due()
            if op == "deliver" or rng.random() < 0.3:
                # Late, shuffled, duplicated and concurrent: as several requests would.
                batch = held * rng.randint(1, 2)
                rng.shuffle(batch)
                held = []
                await asyncio.gather(*(nf.publish([c]) for c in batch))
        await asyncio.gather(*(nf.publish([c]) for c in reversed(held)))
        await nf.pcf.service.revalidate_due()
        await _drained(nf)
        view = await nf.ledger.subscriber(SUPI, nf.clock.now())
        assert view is not None
        want = view.speed.speed.downlink_kbps
        for i, path in enumerate(paths):
            doc = await nf.db["sm_policies"].find_one({"supi": SUPI, "pduSessionId": i})
            assert doc is not None and doc["speed"]["dl"] == want, (seed, doc)
            got = smf.matching(lambda r, p=path: r.path == p)
            if got:  # the SMF's last word is the current speed
                rule = next(iter(got[-1].json["smPolicyDecision"]["sessRules"].values()))
                assert rule["authSessAmbr"]["downlink"] == format_bitrate(want), seed
            else:  # never pushed: the speed is still the one the create answered
                assert want == 20_000, seed
