"""The seam between the CHF and the ledger, against the real database with a FakeClock:
the sweeper writes nothing when time changes nothing, the CHF's session notes left behind
by a crash are dropped once stale (never a live session's), a wallet's pending effects are
bounded, and each drain's sweeper asks only for its own kind."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from nf.catalog import CatalogHolder
from nf.clock import FakeClock
from nf.config import Settings
from nf.effects import FIELD, Drain, entry
from nf.errors import Congestion
from nf.ledger.mongo import COLLECTION, MongoLedger
from nf.ledger.port import ChargeOutcome, ChargeStep, NoteWrite
from nf.runtime import Runtime
from nf.store.mongo import Db, Doc
from tests.ledger import helpers as h

MIB = h.MIB
GRACE_S = 3600  # ledger.note_grace_s, the default


async def _raw(db: Db, key: str) -> Doc:
    d = await db[COLLECTION].find_one({"_id": key})
    assert d is not None
    return d


async def _subscriber(led: MongoLedger, clock: FakeClock, supi: str) -> str:
    await led.ensure_indexes()
    return await h.capped(led, clock.now(), supi, "testco", "t-capped")


async def _noted(led: MongoLedger, supi: str, ref: str, now: datetime, isn: int,
                 expect: int | None, deadline_s: int, fx: Sequence[Doc] = ()) -> bool:
    """One step of CHF session ``ref`` with its note (deadline ``deadline_s`` ahead), as
    ``ChargingService`` writes it; whether it was written."""

    def note(_outs: tuple[ChargeOutcome, ...]) -> NoteWrite[None]:
        return NoteWrite({"e": now + timedelta(seconds=deadline_s), "r": None}, tuple(fx), None)

    got = await led.charge_noted(supi, ref, [h.step(supi, now, requested=MIB, session=ref,
                                                    seq=isn, ttl_s=60)],
                                 now, expect_isn=expect, isn=isn, note=note)
    return got is not None and got.written is not None


# ---------------------------------------------------------------- the reservation sweeper

async def test_sweep_with_nothing_to_change_keeps_the_version(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """A wallet the sweeper finds (its ``due_res`` a lower bound, as a partial write
    leaves it) but where time changes nothing: no new version (every process's copy stays
    good), only the due time set right. One with a reservation due is still swept."""
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    supi = await _subscriber(led, clock, "imsi-001010000000101")
    await h.charge(led, supi, clock.now(), requested=MIB, ttl_s=300, seq=1)
    expires = clock.now() + timedelta(seconds=300)
    await db[COLLECTION].update_one({"_id": supi},
                                    {"$set": {"due_res": clock.now() - timedelta(seconds=1)}})
    v = (await _raw(db, supi))["v"]
    await led.sweep_due("res", clock.now(), 100)
    raw = await _raw(db, supi)
    assert raw["v"] == v
    assert raw["due_res"] == expires.replace(tzinfo=None) or raw["due_res"] == expires
    assert raw["res"]  # the reservation is untouched
    # Nothing due now: a second sweep finds nothing.
    await led.sweep_due("res", clock.now(), 100)
    assert (await _raw(db, supi))["v"] == v
    # Once the reservation is due, the sweep releases it (a new version).
    clock.advance(301)
    await led.sweep_due("res", clock.now(), 100)
    raw = await _raw(db, supi)
    assert raw["v"] != v and raw["res"] == {} and raw["buckets"][0]["r"] == 0


# ---------------------------------------------------------------- stale session notes

async def test_note_left_by_a_crash_is_dropped_by_the_sweeper_a_live_one_never(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """A create that wrote its note and died before inserting the session (or a session
    closed whose ledger close failed): nothing else ever drops its note. The reservation
    sweeper drops it once its deadline lies ``note_grace_s`` behind, and never the note of
    a session still being updated, however old the session."""
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    supi = await _subscriber(led, clock, "imsi-001010000000102")
    t0 = clock.now()
    assert await _noted(led, supi, "leaked", t0, 1, None, 120)
    assert await _noted(led, supi, "live", t0, 1, None, 120)
    isn = 1
    # The live session is updated every 10 minutes, each step moving its deadline on.
    while clock.now() < t0 + timedelta(seconds=120 + GRACE_S - 600):
        clock.advance(600)
        isn += 1
        assert await _noted(led, supi, "live", clock.now(), isn, isn - 1, 120)
    clock.advance((t0 + timedelta(seconds=120 + GRACE_S - 1) - clock.now()).total_seconds())
    await led.sweep_due("res", clock.now(), 100)
    assert set((await _raw(db, supi))["cs"]) == {"leaked", "live"}  # not stale yet
    clock.advance(2)
    await led.sweep_due("res", clock.now(), 100)
    notes = (await _raw(db, supi))["cs"]
    assert set(notes) == {"live"} and notes["live"]["i"] == isn
    assert await led.read_note(supi, "leaked", clock.now()) is None
    # The live session goes on as before.
    clock.advance(10)
    assert await _noted(led, supi, "live", clock.now(), isn + 1, isn, 120)
    # Its note is dropped only once it is stale itself (its session no longer heard of).
    clock.advance(120 + GRACE_S + 1)
    await led.sweep_due("res", clock.now(), 100)
    assert not (await _raw(db, supi)).get("cs")


async def test_stale_note_is_dropped_by_the_next_note_write(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """The wallet's next note write drops a stale note of another session too."""
    led = h.make_ledger(db, settings, h.TEST_CATALOG)
    supi = await _subscriber(led, clock, "imsi-001010000000103")
    assert await _noted(led, supi, "leaked", clock.now(), 1, None, 120)
    clock.advance(120 + GRACE_S + 1)
    assert await _noted(led, supi, "other", clock.now(), 1, None, 120)
    assert set((await _raw(db, supi))["cs"]) == {"other"}


# ---------------------------------------------------------------- the bound on ``fx``

async def test_pending_effects_are_bounded_and_the_write_refused(
        db: Db, settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
        ) -> None:
    """While delivery is down, each step leaves its EDR pending on the wallet. Past
    ``effects.max_pending_per_doc`` the step is refused (NF_CONGESTION), with nothing of it
    written; once the backlog is delivered, the same step goes through."""
    fx_cfg = settings.effects.model_copy(update={"max_pending_per_doc": 10})
    s = settings.model_copy(update={"effects": fx_cfg})
    rt = Runtime(settings=s, clock=clock, db=db)
    led = MongoLedger(db, s, CatalogHolder.from_dir(h.TEST_CATALOG), metrics=rt.metrics)
    supi = await _subscriber(led, clock, "imsi-001010000000104")

    def edr(isn: int) -> list[Doc]:
        return [entry({"_id": f"ref:{isn}"}, clock.now(), entry_id=f"ref:{isn}", kind="edr")]

    for isn in range(1, 11):
        assert await _noted(led, supi, "ref", clock.now(), isn, isn - 1 if isn > 1 else None,
                            120, edr(isn))
    before = await _raw(db, supi)
    assert len(before[FIELD]) == 10
    def refused() -> float:
        return rt.metrics.registry.get_sample_value("nf_effects_backlog_full_total") or 0.0

    before_refusals = refused()
    with pytest.raises(Congestion):
        await _noted(led, supi, "ref", clock.now(), 11, 10, 120, edr(11))
    after = await _raw(db, supi)
    assert after["v"] == before["v"] and len(after[FIELD]) == 10
    assert refused() == before_refusals + 1
    assert [r.levelno for r in caplog.records if "backlog full" in r.getMessage()] == [
        logging.WARNING]
    # Delivered (as a drain acknowledges: a pull, no new version): the step goes through.
    await db[COLLECTION].update_one({"_id": supi}, {"$set": {FIELD: []}})
    assert await _noted(led, supi, "ref", clock.now(), 11, 10, 120, edr(11))
    assert [e["id"] for e in (await _raw(db, supi))[FIELD]] == ["ref:11"]


# ---------------------------------------------------------------- each drain its kind

async def test_each_drain_sweeper_asks_only_for_its_own_kind(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """Documents whose overdue entries are all of another kind are not fetched: with a
    batch of one, a backlog of EDRs does not hide a counter change from its sweeper."""
    cfg = settings.effects.model_copy(update={"sweep_batch": 1, "sweep_grace_s": 1.0})
    rt = Runtime(settings=settings, clock=clock, db=db)
    got: dict[str | None, list[Any]] = {None: [], "edr": []}

    def drain(kind: str | None) -> Drain[Doc]:
        async def deliver(items: Sequence[Doc]) -> None:
            got[kind].extend(items)

        return Drain(rt, "seam_fx", f"test-{kind}", decode=lambda d: d, deliver=deliver,
                     settings=cfg, kind=kind)

    now = clock.now()
    docs = [{"_id": f"edr-{i}", FIELD: [entry({"n": i}, now, kind="edr")]} for i in range(3)]
    docs.append({"_id": "change", FIELD: [entry({"n": "c"}, now)]})
    await db["seam_fx"].insert_many(docs)
    clock.advance(2)
    assert await drain(None).sweep_once() == 1
    assert got[None] == [{"n": "c"}]
    edrs = drain("edr")
    assert [await edrs.sweep_once() for _ in range(4)] == [1, 1, 1, 0]
    assert sorted(d["n"] for d in got["edr"]) == [0, 1, 2]


# ---------------------------------------------------------------- the CHF's decision, as a value

async def test_a_noted_step_hands_back_what_its_written_try_decided(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """The caller's decision on a step's outcomes is asked again on every try of the
    ledger's write, and what comes back (``Noted.written``) is what the try that was
    written decided: a process whose copy of the wallet is stale decides on the copy, its
    write matches nothing, and it decides again on a fresh read; the answer is the second
    decision, the one the wallet holds."""
    a = h.make_ledger(db, settings, h.TEST_CATALOG)
    b = h.make_ledger(db, settings, h.TEST_CATALOG)
    supi = await _subscriber(a, clock, "imsi-001010000000132")
    now = clock.now()
    tries: list[int] = []

    def note(outs: tuple[ChargeOutcome, ...]) -> NoteWrite[tuple[int, int]]:
        tries.append(len(tries) + 1)
        made = (tries[-1], outs[0].granted_bytes)
        return NoteWrite({"e": now + timedelta(seconds=120), "try": tries[-1]}, (), made)

    def step(seq: int) -> list[ChargeStep]:
        return [h.step(supi, now, requested=MIB, session="ref", seq=seq, ttl_s=60)]

    got = await a.charge_noted(supi, "ref", step(1), now, expect_isn=None, isn=1, note=note)
    assert got is not None and got.written is not None and got.written.made == (1, MIB)
    # Another process writes the wallet: this process's copy of it is stale now.
    await h.charge(b, supi, now, requested=MIB, session="other", seq=1)
    tries.clear()
    got = await a.charge_noted(supi, "ref", step(2), now, expect_isn=1, isn=2, note=note)
    assert tries == [1, 2]
    assert got is not None and got.written is not None
    assert got.written.wallet_id == supi and got.written.made == (2, MIB)
    stored = (await _raw(db, supi))["cs"]["ref"]
    assert stored["try"] == 2 and stored["i"] == 2 and stored["s"] == supi
    # A step whose note is not where the caller says writes nothing and decides nothing.
    tries.clear()
    assert await a.charge_noted(supi, "ref", step(3), now, expect_isn=1, isn=3,
                                note=note) is None
    assert tries == []


# ---------------------------------------------------------------- waits on the injected clock

async def test_a_write_waits_out_a_family_move_on_the_injected_clock(
        db: Db, settings: Settings, clock: FakeClock) -> None:
    """A subscriber fenced by a join/leave in progress (not stale) makes a write back off
    and try again until its tries run out (503); every wait is on the ledger's clock, so
    the fake clock moves by the waits and the test itself sleeps for none of them."""
    led = MongoLedger(db, settings, CatalogHolder.from_dir(h.TEST_CATALOG), clock=clock)
    supi = await _subscriber(led, clock, "imsi-001010000000131")
    await db[COLLECTION].update_one({"_id": supi},
                                    {"$set": {"moving": {"to": "grp:x", "at": clock.now()}}})
    before = clock.monotonic()
    with pytest.raises(Congestion):
        await h.charge(led, supi, clock.now(), requested=MIB, seq=1)
    waited = clock.monotonic() - before
    # One jittered backoff per try but the last (each at most 20 ms).
    assert 0 < waited <= 0.02 * settings.ledger.max_write_attempts
