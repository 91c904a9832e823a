"""A Gx and a Gy session cost the database what the same SBI operations cost, and nothing
of the Diameter session map on their hot path (CCR-I, CCR-U, CCR-T).

The NF's parts run in-process (every part, lifespan running, fake clock) on a PyMongo
client with a command listener. Each CCR goes through the Gx or Gy application as the
listener hands it over; each is compared, command by command (name and collection), with
the service operation an SMF's request makes (``PcfService.create / update / delete``,
``ChargingService.create / update / release``) for another subscriber with the same
plan. Immediate delivery of pending effects is off, so the effects that leave after an
answer (EDRs, counter changes) are not mixed in.

A session an earlier version opened (its association named in the session map) still
answers its CCR-U and CCR-T after an upgrade. A push is addressed to the client its URI
names (behind a DRA too) with no read of the map; one of an earlier version's session
(its URI names the peer only) reads the map once.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import monitoring
from quart import Quart

from nf.chf.part import ChfPart
from nf.clock import FakeClock
from nf.config import Settings
from nf.diameter import codec, gx, gy_wire
from nf.diameter.base import APP_GX, APP_GY, PeerInfo
from nf.diameter.codec import VENDOR_3GPP, Avp, Message
from nf.diameter.part import DiameterPart
from nf.diameter.port import AppHandler
from nf.diameter.push import Pusher
from nf.diameter.sessions import Session, SessionMap, notification_uri
from nf.ledger.part import LedgerPart
from nf.notify.outbox import MongoOutbox
from nf.notify.port import Notification
from nf.pcf.part import PcfPart
from nf.store.mongo import Doc
from nf.wiring import create_app
from tests.dbwatch import watched
from tests.diameter.client import mscc
from tests.ledger import helpers as h

V = VENDOR_3GPP
NETWORK = "northwind"
PGW = "pgw1.northwind.test"
REALM = "epc.northwind.test"
PEER = PeerInfo(PGW, REALM, NETWORK, frozenset({APP_GX, APP_GY}), state_id=5)
MIB = 1024 * 1024
# Collections a session's operations touch (the EDRs wait in their carriers' writes).
WATCHED = {"sm_policies", "charging_sessions", "ledger_wallets", "diameter_sessions",
           "outbox"}
IGNORED = {"createIndexes", "listIndexes", "getMore", "killCursors", "endSessions"}


def _target(cmd: Doc, name: str) -> Doc:
    """The filter (or inserted document) of a command."""
    if name == "find":
        return dict(cmd.get("filter") or {})
    if name in ("update", "delete"):
        return dict((cmd.get("updates" if name == "update" else "deletes") or [{}])[0]
                    .get("q") or {})
    if name == "findAndModify":
        return dict(cmd.get("query") or {})
    if name == "insert":
        return dict((cmd.get("documents") or [{}])[0])
    return {}


class Commands(monitoring.CommandListener):
    """(command, collection) of every command on ``WATCHED`` while ``on`` that names a
    document by ``_id`` or a subscriber's (the background sweeps, which run meanwhile,
    name neither); on ``diameter_sessions``, every command."""

    def __init__(self) -> None:
        self.on = False
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        coll = event.command.get(name)
        if not self.on or name in IGNORED or coll not in WATCHED:
            return
        target = _target(event.command, name)
        if coll == "diameter_sessions" or "_id" in target or "supi" in target:
            with self._lock:
                self.seen.append((name, str(coll)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


@dataclass
class Nf:
    app: Quart
    watch: Commands
    parts: list[Any]

    def part(self, kind: type[Any]) -> Any:
        return next(p for p in self.parts if isinstance(p, kind))

    def handler(self, app_id: int) -> AppHandler:
        return next(a for a in self.part(DiameterPart).handlers if a.app_id == app_id)

    async def counted(self, call: Any) -> tuple[Any, Counter[tuple[str, str]]]:
        """What ``call`` (an awaitable) returns, and the commands it sent."""
        self.watch.seen.clear()
        self.watch.on = True
        try:
            got = await call
        finally:
            self.watch.on = False
        return got, Counter(self.watch.seen)


@pytest.fixture
async def nf(settings: Settings, clock: FakeClock) -> AsyncIterator[Nf]:
    watch = Commands()
    async with watched(settings, watch) as (db, quiet):
        app = create_app(quiet, role="sbi", clock=clock, db=db)
        async with app.test_app():
            yield Nf(app, watch, list(app.extensions["nf.parts"]))


def wire(msg: Message) -> Message:
    return codec.decode(codec.encode(msg))


def _sub(imsi: str) -> Avp:
    return codec.new_avp(gx.AVP_SUBSCRIPTION_ID, [
        codec.new_avp(gx.AVP_SUBSCRIPTION_ID_TYPE, gx.SUB_IMSI),
        codec.new_avp(gx.AVP_SUBSCRIPTION_ID_DATA, imsi)])


def _head(sid: str, app: int, rtype: int, number: int) -> list[Avp]:
    return [codec.new_avp(codec.AVP_SESSION_ID, sid),
            codec.new_avp(codec.AVP_ORIGIN_HOST, PGW.encode()),
            codec.new_avp(codec.AVP_ORIGIN_REALM, REALM.encode()),
            codec.new_avp(codec.AVP_DESTINATION_REALM, b"mvno.test"),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, app),
            codec.new_avp(gx.AVP_CC_REQUEST_TYPE, rtype),
            codec.new_avp(gx.AVP_CC_REQUEST_NUMBER, number)]


def gx_ccr(sid: str, rtype: int, number: int, imsi: str) -> Message:
    avps = _head(sid, APP_GX, rtype, number)
    if rtype == gx.INITIAL:
        avps += [_sub(imsi), codec.new_avp(gx.AVP_CALLED_STATION_ID, "internet"),
                 codec.new_avp(gx.AVP_FRAMED_IP_ADDRESS, b"\x0a\x2d\x00\x07")]
    return wire(codec.request(codec.CMD_CCR, APP_GX, avps, hop_by_hop=number + 1,
                              end_to_end=number + 1))


def gy_ccr(sid: str, rtype: int, number: int, imsi: str, used: int | None = None
           ) -> Message:
    avps = [*_head(sid, APP_GY, rtype, number),
            codec.new_avp(461, "32251@3gpp.org"),  # Service-Context-Id
            _sub(imsi), codec.new_avp(455, 1),  # Multiple-Services-Indicator
            mscc(rg=10, rsu=rtype != gx.TERMINATION, used=used)]
    return wire(codec.request(codec.CMD_CCR, APP_GY, avps, hop_by_hop=number + 1,
                              end_to_end=number + 1))


def ok(answer: Message) -> Message:
    assert codec.result_code(answer) == codec.SUCCESS, answer.avps
    return answer


async def test_a_gx_session_costs_what_the_sbi_policy_operations_cost(
        nf: Nf, clock: FakeClock) -> None:
    ledger = nf.part(LedgerPart).ledger
    pcf = nf.part(PcfPart).service
    gx_app = nf.handler(APP_GX)
    await h.unlimited(ledger, clock.now(), "imsi-001010000000901")
    await h.unlimited(ledger, clock.now(), "imsi-001010000000902")
    sid = f"{PGW};1;901"

    # The same operations over the SBI, for the other subscriber.
    ctx = gx.context_data(gx.parse_ccr(gx_ccr("smf;902", gx.INITIAL, 0, "001010000000902")),
                          "https://smf.test/n/902")
    (location, _decision), sbi_create = await nf.counted(
        pcf.create(ctx, "https://nf.test", NETWORK))
    policy = location.rsplit("/", 1)[1]
    no_change = gx.update_data(gx.parse_ccr(gx_ccr("smf;902", gx.UPDATE, 1, "")))
    _, sbi_update = await nf.counted(pcf.update(policy, no_change))
    _, sbi_delete = await nf.counted(pcf.delete(policy))

    cca, gx_create = await nf.counted(
        gx_app.handle(gx_ccr(sid, gx.INITIAL, 0, "001010000000901"), PEER))
    ok(cca)
    assert codec.find(cca, gx.AVP_QOS_INFORMATION, V) is not None
    assert gx_create == sbi_create, (gx_create, sbi_create)
    # The PCEF's Origin-State-Id (its CER's) rode the policy's own insert.
    db = nf.app.extensions["nf.runtime"].db
    doc = await db["sm_policies"].find_one({"supi": "imsi-001010000000901"})
    assert doc is not None and doc["client"] == {"net": NETWORK, "host": PGW, "state": 5}
    cca, gx_update = await nf.counted(gx_app.handle(gx_ccr(sid, gx.UPDATE, 1, ""), PEER))
    ok(cca)
    cca, gx_delete = await nf.counted(gx_app.handle(gx_ccr(sid, gx.TERMINATION, 2, ""),
                                                    PEER))
    ok(cca)

    for ops in (gx_create, gx_update, gx_delete):
        assert not [c for c in ops if c[1] == "diameter_sessions"], ops
    assert (gx_create, gx_update, gx_delete) == (sbi_create, sbi_update, sbi_delete)
    # Nothing is left of the session: a CCR-U after its end is unknown.
    cca = await gx_app.handle(gx_ccr(sid, gx.UPDATE, 3, ""), PEER)
    assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID


async def test_a_gy_session_costs_what_the_sbi_charging_operations_cost(
        nf: Nf, clock: FakeClock) -> None:
    ledger = nf.part(LedgerPart).ledger
    chf = nf.part(ChfPart).service
    gy_app = nf.handler(APP_GY)
    await h.unlimited(ledger, clock.now(), "imsi-001010000000911")
    await h.unlimited(ledger, clock.now(), "imsi-001010000000912")
    sid = f"{PGW};1;911"

    # The same requests, as an SMF sends them over Nchf, for the other subscriber.
    def sbi(rtype: int, number: int, used: int | None = None) -> Any:
        ccr = gy_wire.parse_ccr(gy_ccr("smf;912", rtype, number, "001010000000912", used))
        return gy_wire.to_sbi(ccr, "00101", clock.now(),
                              notify_uri="https://smf.test/n/912"
                              if rtype == gx.INITIAL else None)

    ref = "sbi-912"
    _, sbi_create = await nf.counted(chf.create(sbi(gx.INITIAL, 0), ref=ref))
    _, sbi_update = await nf.counted(chf.update(ref, sbi(gx.UPDATE, 1, MIB)))
    _, sbi_release = await nf.counted(chf.release(ref, sbi(gx.TERMINATION, 2, MIB)))

    cca, gy_create = await nf.counted(
        gy_app.handle(gy_ccr(sid, gx.INITIAL, 0, "001010000000911"), PEER))
    ok(cca)
    assert gy_create == sbi_create, (gy_create, sbi_create)
    db = nf.app.extensions["nf.runtime"].db
    doc = await db["charging_sessions"].find_one({"supi": "imsi-001010000000911"})
    assert doc is not None and doc["client"] == {"net": NETWORK, "host": PGW, "state": 5}
    cca, gy_update = await nf.counted(
        gy_app.handle(gy_ccr(sid, gx.UPDATE, 1, "001010000000911", MIB), PEER))
    ok(cca)
    cca, gy_release = await nf.counted(
        gy_app.handle(gy_ccr(sid, gx.TERMINATION, 2, "001010000000911", MIB), PEER))
    ok(cca)

    for ops in (gy_create, gy_update, gy_release):
        assert not [c for c in ops if c[1] == "diameter_sessions"], ops
    assert (gy_create, gy_update, gy_release) == (sbi_create, sbi_update, sbi_release)


async def test_a_gx_session_of_an_earlier_version_survives_the_upgrade(
        nf: Nf, clock: FakeClock) -> None:
    ledger = nf.part(LedgerPart).ledger
    pcf = nf.part(PcfPart).service
    gx_app = nf.handler(APP_GX)
    supi = "imsi-001010000000921"
    await h.unlimited(ledger, clock.now(), supi)
    sid = f"{PGW};1;921"
    # Opened before: the association's id came from the PCF, the map named it.
    ctx = gx.context_data(gx.parse_ccr(gx_ccr(sid, gx.INITIAL, 0, supi[5:])),
                          f"diameter://{PGW}/{sid.replace(';', '%3B')}")
    location, _ = await pcf.create(ctx, "https://nf.test", NETWORK)
    policy = location.rsplit("/", 1)[1]
    sessions = SessionMap(nf.app.extensions["nf.runtime"].db)
    await sessions.put(Session("gx", NETWORK, sid, policy, supi, PGW, PGW, REALM, 5),
                       clock.now())

    ok(await gx_app.handle(gx_ccr(sid, gx.UPDATE, 1, ""), PEER))
    assert (await pcf.get(policy))["context"]["supi"] == supi
    ok(await gx_app.handle(gx_ccr(sid, gx.TERMINATION, 2, ""), PEER))
    assert await sessions.get("gx", NETWORK, sid) is None
    cca = await gx_app.handle(gx_ccr(sid, gx.UPDATE, 3, ""), PEER)
    assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID
    # Another host network's peer names the Session-Id and finds nothing.
    other = PeerInfo("pgw1.bluepeak.test", "epc.bluepeak.test", "bluepeak",
                     frozenset({APP_GX}))
    cca = await gx_app.handle(gx_ccr(sid, gx.UPDATE, 4, ""), other)
    assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID


class Links:
    """The connections of the Diameter process, with one peer (a DRA) that answers every
    request 2001: a stand-in for a host network's node. Sets ``done`` after ``n``."""

    def __init__(self, peer: PeerInfo, n: int, done: asyncio.Event) -> None:
        self.peer = peer
        self.sent: list[Message] = []
        self._n = n
        self._done = done

    def open_peers(self) -> list[PeerInfo]:
        return [self.peer]

    async def request(self, origin_host: str, req: Message, timeout_s: float) -> Message:
        assert origin_host == self.peer.origin_host
        self.sent.append(wire(req))
        if len(self.sent) >= self._n:
            self._done.set()
        return wire(codec.answer(req, codec.SUCCESS, "pgw7.northwind.test", REALM))


async def test_a_push_is_addressed_from_its_uri_and_reads_no_session_map(
        nf: Nf, clock: FakeClock) -> None:
    dra = PeerInfo("dra.northwind.test", "dra.test", NETWORK, frozenset({APP_GX}))
    sessions = SessionMap(nf.app.extensions["nf.runtime"].db)
    outbox = nf.part(MongoOutbox)
    body = {"resourceUri": "r", "smPolicyDecision": {}}
    new = notification_uri(dra.origin_host, "new;1", "pgw7.northwind.test", "epc7.test")
    # A session an earlier version opened: its URI names the peer only, the map the client.
    await sessions.put(Session("gx", NETWORK, "old;1", "p-old", "imsi-1", dra.origin_host,
                               "pgw8.northwind.test", "epc8.test"), clock.now())
    await outbox.enqueue([
        Notification("test.push", f"{new}/update", body, resource="new"),
        Notification("test.push", f"diameter://{dra.origin_host}/old%3B1/update", body,
                     resource="old")])
    stopping = asyncio.Event()
    links = Links(dra, 2, stopping)
    pusher = Pusher(outbox, links, sessions, stopping, clock, origin_host="ocs.mvno.test",
                    origin_realm="mvno.test", timeout_s=1.0, concurrency=4,
                    poll_interval_s=0.02, stranded_after_s=60.0)

    nf.watch.seen.clear()
    nf.watch.on = True
    try:
        await asyncio.wait_for(pusher.run(), 10)
    finally:
        nf.watch.on = False
    dest = {codec.get_str(r, codec.AVP_SESSION_ID): (
        codec.get_str(r, gx.AVP_DESTINATION_HOST),
        codec.get_str(r, codec.AVP_DESTINATION_REALM)) for r in links.sent}
    assert dest == {"new;1": ("pgw7.northwind.test", "epc7.test"),
                    "old;1": ("pgw8.northwind.test", "epc8.test")}
    # The map is read for the earlier version's session only.
    assert [c for c in nf.watch.seen if c[1] == "diameter_sessions"] == [
        ("find", "diameter_sessions")]
