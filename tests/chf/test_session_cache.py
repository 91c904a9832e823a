"""Two CHF instances on one database, each with its own per-process session copy.

The warm update path trusts a process-local copy of the charging session; these tests make
one instance's copy stale (the other instance moved the session on) and check that money
and answers stay exact: retransmissions answered the same, late sequence numbers refused
without a debit, nothing left reserved after a release elsewhere, one EDR per request.
"""

from __future__ import annotations

from nf.clock import FakeClock
from nf.config import Settings
from nf.store.mongo import Db
from tests.chf.harness import MIB, two
from tests.chf.test_charging import SUPI, edrs, used_and_reserved
from tests.ledger import helpers as h
from tests.smf_sim import Usage


async def test_a_stale_session_copy_never_charges_twice_or_leaks_a_reservation(
        settings: Settings, db: Db, clock: FakeClock) -> None:
    async with two(settings, db, clock) as (a, b):
        await h.capped(a.ledger, clock.now(), SUPI)
        smf = a.smf(SUPI)
        assert (await smf.create()).status == 201          # isn 0 via A (A caches it)
        smf.transport = b.post
        assert (await smf.update(Usage(100, 0))).status == 200   # isn 1 via B
        smf.transport = a.post
        r2 = await smf.update(Usage(200, 0))                 # isn 2 via A: A's copy is stale
        assert r2.status == 200
        smf.transport = b.post
        r2b = await smf.retransmit()                         # isn 2 again, via B
        assert r2b.status == 200
        assert r2b.response == r2.response
        assert (await used_and_reserved(a, SUPI))[0] == 300

        smf.transport = a.post
        smf.isn = 0
        late = await smf.update(Usage(5 * MIB, 0))          # isn 1 again, late, via A
        assert late.status == 400
        assert (await used_and_reserved(a, SUPI))[0] == 300  # nothing debited

        smf.isn = 2
        smf.transport = b.post
        assert (await smf.release(Usage(1, 0))).status == 204    # isn 3 via B
        smf.transport = a.post
        await smf.update(Usage(400, 0))                      # after the release, via A
        used, reserved = await used_and_reserved(a, SUPI)
        assert reserved == 0                                 # no reservation left behind
        records = await edrs(a, smf.ref or "")
        seqs = [d["invocation_sequence_number"] for d in records
                if d.get("invocation_sequence_number") is not None]
        assert len(seqs) == len(set(seqs))                   # one EDR per request
        reported = sum(d.get("used_total", 0) or 0 for d in records)
        assert used == reported                              # committed == reported (EDRs)
        s = await db["charging_sessions"].find_one({})
        assert s is not None
        assert s["status"] == "closed"
