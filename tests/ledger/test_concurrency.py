"""Storms of concurrent reservers on one subscriber and on one family pool, against the
real database, through several ledger instances (as several NF processes would be) that
race on the same documents. Every step carries its sequence number (as the CHF sends it)
and is retried once, concurrently, through another instance; from the second round on,
the previous step is also sent again at the same time (through the third instance: a
retransmission when it comes first, else a late duplicate). Afterwards the invariants
must hold and no usage is lost or counted twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from nf.clock import FakeClock
from nf.config import Settings
from nf.ledger.mongo import MongoLedger
from nf.ledger.port import ChargeOutcome, ChargeResult, ChargeStep
from nf.ledger.state import AFTERCAP, POOL, Wallet
from nf.store.mongo import Db
from tests.ledger import helpers as h

MIB = h.MIB
RESERVERS = 60
ROUNDS = 3
ASK = 256 * 1024


def _ledgers(db: Db, settings: Settings) -> list[MongoLedger]:
    # Two instances without in-process queueing (pure optimistic races) and one with it.
    return [h.make_ledger(db, settings, h.TEST_CATALOG, local_locks=False),
            h.make_ledger(db, settings, h.TEST_CATALOG, local_locks=False),
            h.make_ledger(db, settings, h.TEST_CATALOG)]


@contextlib.asynccontextmanager
async def _writing(ledgers: list[MongoLedger], batched: bool) -> AsyncIterator[None]:
    """With ``batched``, each instance's write worker runs (as in the NF): the charging
    steps' writes of each instance travel in bulk writes, and duplicates of one step from
    two instances land in batches that race on the same document."""
    if not batched:
        yield
        return
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        for led in ledgers:
            tg.create_task(led.run_writes(stop))
        await asyncio.sleep(0)
        try:
            yield
        finally:
            stop.set()
    assert sum(led.writes.batches for led in ledgers) > 0
    # Some batches held several updates (the point of batching).
    assert any(led.writes.updates > led.writes.batches for led in ledgers)


BATCHED = pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])


async def _reserver(ledgers: list[MongoLedger], supi: str, i: int, clock: FakeClock
                    ) -> tuple[int, int]:
    """Runs ROUNDS of report+request, then a final report. Returns (granted, reported)."""
    now = clock.now()
    led = ledgers[i % len(ledgers)]
    other = ledgers[(i + 1) % len(ledgers)]
    third = ledgers[(i + 2) % len(ledgers)]
    held = 0
    granted_total = 0
    reported = 0
    prev: tuple[ChargeStep, ChargeOutcome] | None = None
    for rnd in range(ROUNDS + 1):
        req = ASK if rnd < ROUNDS else 0
        step = h.step(supi, now, used=held, requested=req, session=f"s{i}", seq=rnd + 1,
                      ttl_s=3600)
        late = [third.charge(prev[0])] if prev is not None else []
        a, b, *old = await asyncio.gather(led.charge(step), other.charge(step), *late)
        # Both answers are the same decision: one applied it, the other replayed it.
        assert a.granted_bytes == b.granted_bytes and a.result == b.result
        assert a.replay != b.replay or (a.replay and b.replay)
        # The previous step again changes nothing: before this one it is answered as the
        # first time, after it as a late duplicate (nothing granted, nothing debited).
        for o in old:
            assert prev is not None and o.replay
            assert (o.granted_bytes, o.reserved, o.committed) in (
                (prev[1].granted_bytes, prev[1].reserved, prev[1].committed), (0, (), ()))
        prev = step, a
        reported += held
        held = a.granted_bytes
        granted_total += held
        assert held <= req
    return granted_total, reported


def _check(w: Wallet) -> None:
    per_bucket: dict[str, int] = {}
    for r in w.reservations:
        for p in r.portions:
            per_bucket[p.bucket_id] = per_bucket.get(p.bucket_id, 0) + p.bytes
    for b in w.buckets:
        assert b.used >= 0 and b.reserved >= 0 and b.used + b.reserved <= b.quota
        assert per_bucket.get(b.id, 0) == b.reserved
    for m in w.members:
        own = sum(b.used for b in w.buckets if b.owner == m.supi)
        assert own + m.pool_used + m.aftercap_used + m.overage == m.reported
        if m.cap is not None:
            assert m.pool_used + m.pool_reserved <= m.cap


@BATCHED
async def test_storm_on_one_subscriber(db: Db, settings: Settings, clock: FakeClock,
                                       batched: bool) -> None:
    ledgers = _ledgers(db, settings)
    await ledgers[0].ensure_indexes()
    supi = await h.capped(ledgers[0], clock.now(), "imsi-001010000000001", "testco",
                          "t-capped")
    async with _writing(ledgers, batched):
        results = await asyncio.gather(*(_reserver(ledgers, supi, i, clock)
                                         for i in range(RESERVERS)))
    got = await ledgers[0].wallet(supi, clock.now())
    assert got is not None
    w, m = got
    _check(w)
    granted = sum(g for g, _r in results)
    reported = sum(r for _g, r in results)
    plan = next(b for b in w.buckets if b.kind == "plan")
    # The 10 MiB cap is worth 40 asks; 60 reservers x 3 rounds ask for 45 MiB.
    assert granted == plan.quota == 10 * MIB
    assert plan.used == reported == granted and plan.reserved == 0
    assert m.reported == reported and m.overage == 0
    assert w.reservations == ()


@BATCHED
async def test_storm_on_one_family_pool(db: Db, settings: Settings, clock: FakeClock,
                                        batched: bool) -> None:
    ledgers = _ledgers(db, settings)
    await ledgers[0].ensure_indexes()
    now = clock.now()
    members = [f"imsi-00101000000002{i}" for i in range(1, 5)]
    gid = await h.family(ledgers[0], now, "imsi-001010000000020", members, "testco",
                         "t-family")
    everyone = ["imsi-001010000000020", *members]
    await ledgers[0].set_member_cap(members[0], 2 * MIB, now)
    async with _writing(ledgers, batched):
        results = await asyncio.gather(*(
            _reserver(ledgers, everyone[i % len(everyone)], i, clock)
            for i in range(RESERVERS)))
    g = await ledgers[0].group(gid, clock.now())
    assert g is not None
    _check(g)
    pool = next(b for b in g.buckets if b.id == POOL)
    granted = sum(gr for gr, _r in results)
    assert pool.used + sum(m.aftercap_used for m in g.members) == granted
    assert pool.used <= pool.quota and pool.reserved == 0
    capped = g.member(members[0])
    assert capped is not None and capped.pool_used <= 2 * MIB
    for m in g.members:
        assert m.cap is None or m.pool_used <= m.cap
    # The pool (20 MiB) is smaller than the asks (45 MiB): it ran dry, then throttled.
    assert pool.used == pool.quota or all(
        m.cap is not None and m.pool_used == m.cap for m in g.members)
    assert any(m.aftercap_used > 0 for m in g.members)


async def test_grants_after_cap_are_throttled_not_blocked(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    now = clock.now()
    supi = await h.unlimited(led, now, "imsi-001010000000030", "testco", "t-unlimited")
    outs = await asyncio.gather(*(
        led.charge(h.step(supi, now, requested=MIB, session=f"x{i}")) for i in range(50)))
    assert all(o.result is ChargeResult.SUCCESS for o in outs)
    full = [o for o in outs if not o.throttled]
    assert sum(o.granted_bytes for o in full) == 10 * MIB
    assert sum(o.final for o in full) == 1
    assert all(o.reserved[0].bucket_id == AFTERCAP for o in outs if o.throttled)
