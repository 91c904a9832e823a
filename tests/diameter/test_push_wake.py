"""The Diameter pusher's wake against the real outbox and database: a push enqueued while
the pusher is claiming is sent at once, not at the next poll. The clock is fake and never
moved, so the poll never comes; the peer's connection is a stand-in that answers 2001."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nf.clock import FakeClock
from nf.config import Settings
from nf.diameter import codec, gy
from nf.diameter.base import APP_GY, PeerInfo
from nf.diameter.codec import Message
from nf.diameter.push import Pusher
from nf.diameter.sessions import SessionMap
from nf.notify.outbox import MongoOutbox
from nf.notify.port import Notification
from nf.runtime import Runtime
from nf.store.mongo import Db, Doc
from tests.diameter.client import PGW, REALM

PEER = PeerInfo(PGW, REALM, "northwind", frozenset({APP_GY}))


def reauth(n: int) -> Notification:
    return Notification(kind="chf.reauthorization",
                        uri=f"diameter://{PGW}/{PGW}%3B{n}%3B1/{gy.PUSH}",
                        body={"notificationType": "REAUTHORIZATION"}, resource=f"ref-{n}")


class Pgw:
    """The connection to the PGW: records each request and answers it 2001."""

    def __init__(self) -> None:
        self.sessions: list[str | None] = []
        self.arrived = asyncio.Event()

    def open_peers(self) -> list[PeerInfo]:
        return [PEER]

    async def request(self, origin_host: str, req: Message, timeout_s: float) -> Message:
        self.sessions.append(codec.get_str(req, codec.AVP_SESSION_ID))
        self.arrived.set()
        return codec.answer(req, codec.SUCCESS, PGW, REALM)


class EnqueuedDuringAClaim(MongoOutbox):
    """The outbox, with one enqueue made (when ``late`` is given) right after a claim's
    query has run and before the pusher looks at its result: as if another request had
    enqueued a push at that moment."""

    late: Notification | None = None

    async def claim_diameter(self, peers: Sequence[str], limit: int) -> list[Doc]:
        docs = await super().claim_diameter(peers, limit)
        if self.late is not None:
            note, self.late = self.late, None
            await self.enqueue([note])
        return docs


async def test_a_push_enqueued_during_a_claim_is_sent_without_waiting_for_the_poll(
        settings: Settings, db: Db) -> None:
    clock = FakeClock(timers=True)  # never moved: the 60 s poll never ends
    rt = Runtime(settings=settings, clock=clock, db=db)
    outbox = EnqueuedDuringAClaim(rt)
    pgw = Pgw()
    stopping = asyncio.Event()
    pusher = Pusher(outbox, pgw, SessionMap(rt.db), stopping, clock,
                    origin_host="ocs.mvno.test", origin_realm="mvno.test", timeout_s=2.0,
                    concurrency=1, poll_interval_s=60.0, stranded_after_s=600.0)
    task = asyncio.create_task(pusher.run())
    try:
        await outbox.enqueue([reauth(1)])
        await asyncio.wait_for(pgw.arrived.wait(), 5)
        # The next claim (once the first push is settled) finds nothing; the second push
        # is enqueued just after its query.
        outbox.late = reauth(2)
        deadline = asyncio.get_running_loop().time() + 3
        while len(pgw.sessions) < 2:
            assert asyncio.get_running_loop().time() < deadline, \
                "the push enqueued during the claim waited for the poll"
            await asyncio.sleep(0.02)
        assert pgw.sessions == [f"{PGW};1;1", f"{PGW};2;1"]
        assert outbox.late is None
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
