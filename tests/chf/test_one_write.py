"""A warm charging update is one database write: the session's new state (its note: the
sequence number, the answer kept for retransmissions, the rating groups' flags, the
supervision deadline) and the step's EDR ride the ledger's conditional write on the wallet.

Counted with a command listener on the NF's own database client: every command the app
sends that names the session or the wallet by ``_id``. Immediate delivery of pending
effects is off here, so the EDR's later insert (by the sweeper) is not mixed in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from pymongo import monitoring

from nf.clock import FakeClock
from nf.config import Settings
from nf.store.mongo import Db
from tests.chf.harness import MIB, Nf, build, settled, two
from tests.chf.test_charging import SUPI, edrs, used_and_reserved
from tests.dbwatch import watched
from tests.ledger import helpers as h
from tests.smf_sim import SmfSim, Usage

SESSIONS, WALLETS = "charging_sessions", "ledger_wallets"


class Commands(monitoring.CommandListener):
    """(command, collection, _id) of every command that names one document by ``_id``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        cmd = event.command
        name = event.command_name
        coll = cmd.get(name)
        doc_id: Any = None
        if name == "find":
            doc_id = (cmd.get("filter") or {}).get("_id")
        elif name in ("update", "delete"):
            key = "updates" if name == "update" else "deletes"
            first = (cmd.get(key) or [{}])[0]
            doc_id = (first.get("q") or {}).get("_id")
        elif name == "findAndModify":
            doc_id = (cmd.get("query") or {}).get("_id")
        elif name == "insert":
            doc_id = (cmd.get("documents") or [{}])[0].get("_id")
        if isinstance(doc_id, str):
            self.seen.append((name, str(coll), doc_id))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    def of(self, *ids: str) -> list[tuple[str, str, Any]]:
        return [c for c in self.seen if c[2] in ids]


@pytest.fixture
async def counted(settings: Settings, clock: FakeClock
                  ) -> AsyncIterator[tuple[Nf, Commands]]:
    watch = Commands()
    async with watched(settings, watch) as (db, quiet), \
            aclosing(build(quiet, db, clock)) as gen:
        yield await gen.__anext__(), watch


async def _note(nf: Nf, wallet_id: str, ref: str) -> dict[str, Any] | None:
    doc = await nf.db[WALLETS].find_one({"_id": wallet_id}, {"cs": 1})
    assert doc is not None
    note = (doc.get("cs") or {}).get(ref)
    return dict(note) if note is not None else None


async def _opened(nf: Nf) -> tuple[SmfSim, str]:
    """A capped subscriber's session, created (its first note written with the create)."""
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI)
    assert (await smf.create()).status == 201
    ref = smf.ref or ""
    assert (await _note(nf, SUPI, ref) or {}).get("i") == 0
    return smf, ref


async def test_a_warm_update_is_one_write_and_keeps_its_answer_and_edr(
        counted: tuple[Nf, Commands]) -> None:
    nf, watch = counted
    smf, ref = await _opened(nf)
    first = await smf.update(Usage(MIB, 0))
    assert first.status == 200
    watch.seen.clear()
    second = await smf.update(Usage(2 * MIB, 0))
    assert second.status == 200
    # One command for the whole update: the conditional write of the wallet.
    assert watch.of(ref, SUPI) == [("update", WALLETS, SUPI)]

    # The session document still holds the create; the wallet holds the session's state.
    stored = await nf.db[SESSIONS].find_one({"_id": ref})
    assert stored is not None and stored["isn"] == 0
    note = await _note(nf, SUPI, ref)
    assert note is not None and note["i"] == 2 and note["s"] == SUPI
    assert note["r"]["body"] == second.response

    # A retransmission gets the same answer from the note and charges nothing again.
    again = await smf.retransmit()
    assert again.status == 200 and again.response == second.response
    assert (await used_and_reserved(nf, SUPI))[0] == 3 * MIB
    # The EDRs wait in the wallet until the sweeper stores them: one per request.
    await nf.chf.wallet_edr_fx.sweep_once()
    nf.clock.advance(60)
    await nf.chf.wallet_edr_fx.sweep_once()
    await nf.chf.edr_fx.sweep_once()
    records = await edrs(nf, ref)
    assert [(r["event"], r["invocation_sequence_number"]) for r in records] == [
        ("create", 0), ("update", 1), ("update", 2)]

    # A release closes the session and drops its note in the ledger's own write.
    assert (await smf.release(Usage(0, 0))).status == 204
    assert await _note(nf, SUPI, ref) is None
    closed = await nf.db[SESSIONS].find_one({"_id": ref})
    assert closed is not None and closed["status"] == "closed" and closed["isn"] == 3


async def test_a_session_note_moves_with_its_member_into_and_out_of_a_family(
        clock: FakeClock, counted: tuple[Nf, Commands]) -> None:
    nf, watch = counted
    owner, member = "imsi-001010000000701", "imsi-001010000000702"
    now = clock.now()
    await h.subscriber(nf.ledger, now, owner, plan=h.DEMO_CAPPED)
    await h.subscriber(nf.ledger, now, member, plan=h.DEMO_CAPPED)
    smf = nf.smf(member)
    assert (await smf.create()).status == 201
    ref = smf.ref or ""
    assert (await smf.update(Usage(MIB, 0))).status == 200
    assert (await _note(nf, member, ref) or {}).get("i") == 1

    gid = await nf.ledger.create_group(owner, h.DEMO_FAMILY, clock.now())
    await nf.ledger.join_group(owner, gid, clock.now())
    await nf.ledger.join_group(member, gid, clock.now())
    group = f"grp:{gid}"
    assert (await _note(nf, group, ref) or {}).get("i") == 1

    watch.seen.clear()
    assert (await smf.update(Usage(MIB, 0))).status == 200
    # Still one write, now on the group's wallet (the member's copy of the note moved).
    assert [c for c in watch.of(ref, member, group) if c[0] != "find"] == [
        ("update", WALLETS, group)]
    assert (await _note(nf, group, ref) or {}).get("i") == 2

    await nf.ledger.leave_group(member, clock.now())
    assert (await _note(nf, member, ref) or {}).get("i") == 2
    group_doc = await nf.db[WALLETS].find_one({"_id": group})
    assert group_doc is not None and ref not in (group_doc.get("cs") or {})
    again = await smf.update(Usage(MIB, 0))
    assert again.status == 200
    assert (await _note(nf, member, ref) or {}).get("i") == 3
    assert (await smf.release(Usage(0, 0))).status == 204
    assert await _note(nf, member, ref) is None
    await nf.chf.wallet_edr_fx.sweep_once()
    nf.clock.advance(60)
    await nf.chf.wallet_edr_fx.sweep_once()
    await nf.chf.edr_fx.sweep_once()
    await settled(nf.db)
    seqs = [r["invocation_sequence_number"] for r in await edrs(nf, ref)]
    assert seqs == [0, 1, 2, 3, 4]


async def test_supervision_reads_the_note_and_moves_the_stored_deadline(
        counted: tuple[Nf, Commands]) -> None:
    nf, _watch = counted
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI)
    await smf.create()
    ref = smf.ref or ""
    created = await nf.db[SESSIONS].find_one({"_id": ref})
    assert created is not None
    nf.clock.advance(3600)
    assert (await smf.update(Usage(MIB, 0))).status == 200
    nf.clock.advance(3600 + 1)  # the stored deadline has passed; the note's has not
    assert await nf.chf.service.supervise_once() == 0
    synced = await nf.db[SESSIONS].find_one({"_id": ref})
    assert synced is not None and synced["status"] == "open" and synced["isn"] == 1
    assert synced["expires_at"] > created["expires_at"]
    nf.clock.advance(3600)
    assert await nf.chf.service.supervise_once() == 1
    assert await _note(nf, SUPI, ref) is None


async def test_a_session_released_elsewhere_refuses_a_late_update_without_a_charge(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    """Process A created the session (its copy says: no update yet); process B released
    it. A's copy is behind the wallet's note (the release dropped it): A's update writes
    nothing and is refused, and nothing stays reserved."""
    async with two(settings, db, clock) as (a, b):
        await h.capped(a.ledger, clock.now(), SUPI)
        smf = a.smf(SUPI)
        assert (await smf.create()).status == 201                # via A, which keeps a copy
        smf.transport = b.post
        assert (await smf.release(Usage(MIB, 0))).status == 204  # via B
        smf.transport = a.post
        smf.isn = 0
        late = await smf.update(Usage(MIB, 0))                 # isn 1, via A's copy
        assert late.status == 404
        assert await used_and_reserved(a, SUPI) == (MIB, 0)


async def test_a_create_retransmitted_after_a_crash_before_its_session_was_stored(
        counted: tuple[Nf, Commands]) -> None:
    """The wallet's write (charge, note, EDR) happened; the process died before storing
    the session. The retransmitted create is answered from the note, charges nothing
    again, and stores the session."""
    nf, _watch = counted
    await h.capped(nf.ledger, nf.clock.now(), SUPI)
    smf = nf.smf(SUPI)
    created = await smf.create()
    assert created.status == 201
    ref = smf.ref or ""
    reserved = (await used_and_reserved(nf, SUPI))[1]
    assert reserved > 0
    await nf.db[SESSIONS].delete_one({"_id": ref})  # as if it was never stored
    nf.chf.store.forget(ref)
    again = await smf.retransmit()
    assert again.status == 201 and again.response == created.response
    assert (await used_and_reserved(nf, SUPI))[1] == reserved   # nothing reserved twice
    stored = await nf.db[SESSIONS].find_one({"_id": ref})
    assert stored is not None and stored["status"] == "open" and stored["isn"] == 0
    assert (await smf.update(Usage(MIB, 0))).status == 200
    assert (await smf.release(Usage(0, 0))).status == 204
    assert await used_and_reserved(nf, SUPI) == (MIB, 0)


async def test_an_update_without_units_is_one_write_too(
        counted: tuple[Nf, Commands]) -> None:
    nf, watch = counted
    smf, ref = await _opened(nf)
    watch.seen.clear()
    empty = await smf.update(None, requested=None)  # no multipleUnitUsage at all
    assert empty.status == 200
    assert watch.of(ref, SUPI) == [("update", WALLETS, SUPI)]
    assert (await _note(nf, SUPI, ref) or {}).get("i") == 1
    assert (await smf.update(Usage(MIB, 0))).status == 200
    assert (await _note(nf, SUPI, ref) or {}).get("i") == 2
