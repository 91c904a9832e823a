"""Nothing acknowledged is lost when the NF or the database is SIGKILLed under load.

Concurrent charging sessions (capped single subscribers with two PDU sessions each, and
the members of a family pool) are driven to their caps over real HTTP/2 while the test
SIGKILLs (a) the whole ``nf serve`` process tree, or (b) the database server, then starts
it again on the same ports and data. The SMFs retransmit every unanswered request with the
same sequence number. Afterwards, read through the provisioning API:

- every wallet's committed usage equals what its SMFs reported and had acknowledged (each
  sequence number counted once), and no bucket is over its quota;
- nothing stays reserved once every session is released;
- a capped subscriber ends exactly at the cap, and the family pool exactly at its size.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.care import Care
from tests.crash.harness import ADMIN, MIB, Db, Ledger, Nf, drive_to_cap
from tests.smf_sim import SmfSim, httpx_transport

# A SIGKILLed peer (the NF, the database) leaves the client's broken HTTP/2 connections to
# the garbage collector, which reports them as unclosed sockets; each test collects its own
# at its end (``run_with_crash``), so none is reported in a later test.
pytestmark = [pytest.mark.e2e,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

SINGLES = [f"imsi-00101800000{i:04d}" for i in range(4)]
FAMILY = [f"imsi-00101810000{i:04d}" for i in range(3)]
SESSIONS_EACH = 2
CAP = 5 * MIB  # c-capped
POOL, MEMBER_CAP = 7 * MIB, 4 * MIB  # c-family
KILL_AFTER = 14  # answered requests before the kill: the crash lands mid-run
DOWN_S = 0.6  # the database stays dead this long
DEADLINE_S = 120.0


async def seed(nf: Nf) -> str:
    """The subscribers and the family group, through the care API; returns the group id."""
    async with httpx.AsyncClient(timeout=30) as client:
        care = Care(client, nf.oam, ADMIN)
        for supi in SINGLES:
            await care.subscriber(supi, brand="crashco", plan="c-capped")
        for supi in FAMILY:
            await care.subscriber(supi, brand="crashco")
        return await care.family(FAMILY[0], "c-family", FAMILY[1:])


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Db, Nf, str]]:
    """The database, the NF on it, and the seeded family group's id; both stopped after."""
    db = Db(tmp_path / "db")
    db.start()
    nf = Nf(db.uri, "crash", tmp_path)
    try:
        nf.start()
        yield db, nf, asyncio.run(seed(nf))
    finally:
        nf.stop()
        db.stop()


def get(c: httpx.Client, path: str) -> httpx.Response:
    """A care read, retried while the NF's OAM process reconnects to a restarted
    database (503)."""
    deadline = time.monotonic() + 30
    while True:
        r = c.get(path)
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def check(nf: Nf, gid: str, book: Ledger) -> None:
    with httpx.Client(base_url=nf.oam, headers=ADMIN, timeout=30) as c:
        for supi in SINGLES:
            r = get(c, f"/provisioning/v1/subscribers/{supi}/balance")
            assert r.status_code == 200, r.text
            buckets: list[dict[str, Any]] = r.json()["buckets"]
            for b in buckets:
                assert b["reservedBytes"] == 0, (supi, b)
                assert 0 <= b["usedBytes"] <= b["quotaBytes"], (supi, b)
            used = sum(b["usedBytes"] for b in buckets)
            assert used == book.reported.get(supi, 0), (supi, used, book.reported)
            assert used == CAP, (supi, used)
        r = get(c, f"/provisioning/v1/groups/{gid}")
        assert r.status_code == 200, r.text
        group = r.json()
        pool = group["pool"]
        assert pool["reservedBytes"] == 0, pool
        assert pool["usedBytes"] == POOL == pool["quotaBytes"], pool
        members = {m["supi"]: m for m in group["members"]}
        for supi in FAMILY:
            m = members[supi]
            assert m["reservedBytes"] == 0, m
            assert m["usedBytes"] == book.reported.get(supi, 0), (m, book.reported)
            assert m["usedBytes"] <= MEMBER_CAP, m
        assert sum(book.reported.get(s, 0) for s in FAMILY) == POOL


async def run_with_crash(nf: Nf, crash: Callable[[], Awaitable[None]]) -> Ledger:
    book = Ledger()
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient(http1=False, http2=True, timeout=5) as client:
        post = httpx_transport(client, nf.sbi)
        sims = [SmfSim(post, supi=s, pdu_session_id=k + 1, nf_name=str(uuid.uuid4()))
                for s in [*SINGLES, *FAMILY] for k in range(SESSIONS_EACH)]
        drivers = asyncio.gather(*(drive_to_cap(s, book, deadline) for s in sims))

        async def chaos() -> None:
            # Kill once enough was answered, at a moment with requests in flight.
            while book.answered < KILL_AFTER or book.in_flight == 0:
                assert not drivers.done(), "the run ended before the crash"
                await asyncio.sleep(0.01)
            book.in_flight_at_crash = book.in_flight
            await crash()

        await asyncio.gather(drivers, chaos())
    gc.collect()
    return book


def test_nf_killed_mid_run_loses_nothing_and_charges_nothing_twice(
        rig: tuple[Db, Nf, str]) -> None:
    _, nf, gid = rig

    async def crash() -> None:
        nf.kill()
        await nf.restart()

    book = asyncio.run(run_with_crash(nf, crash))
    assert nf.starts == 2
    print(f"answered {book.answered}, retransmissions {book.retransmissions}")
    assert book.retransmissions > 0, "the kill did not catch a request in flight"
    check(nf, gid, book)


def test_database_killed_mid_run_loses_nothing_and_charges_nothing_twice(
        rig: tuple[Db, Nf, str]) -> None:
    db, nf, gid = rig

    async def crash() -> None:
        db.kill()
        await asyncio.sleep(DOWN_S)
        db.start()  # same data directory, same port

    book = asyncio.run(run_with_crash(nf, crash))
    print(f"answered {book.answered}, retransmissions {book.retransmissions}, "
          f"in flight at the kill {book.in_flight_at_crash}")
    # Requests caught by the kill either failed and were retransmitted, or waited for
    # the database to come back (the driver retries its writes): either way some were.
    assert book.retransmissions > 0 or book.in_flight_at_crash > 0, \
        "the kill did not catch a request in flight"
    check(nf, gid, book)
