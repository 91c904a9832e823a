"""Three NF instances, one database: what an operator running several replicas relies on.

Three ``nf serve`` processes (each its own SBI and OAM port) share one database. SMFs
spread every subscriber's sessions over all three: each request of a charging session
goes to the next instance, and each retransmission to another instance than the original.
The test is black-box: it asserts on answers, on what a real HTTP/2 SMF receives, on the
provisioning API's balances, and on EDR documents through their documented fields only
(``kind``, ``event``, ``supi``, ``charging_data_ref``, ``invocation_sequence_number``),
waiting with deadlines for whatever happens in the background.

- Caps hold exactly: two sessions of a blocking plan on different instances end at the
  cap to the byte; throttling plans and a family pool never use more than the allowance.
- Retransmissions to another instance get the same answer and are not charged again.
- A throttle reaches the SMF exactly once per policy, whichever instance decided it.
- Sweepers run on every instance and never act twice: an abandoned session's reservation
  expires and supervision closes it once (one EDR); every charging request has one EDR.
- SIGKILL of one instance's whole process group right after it answered loses nothing:
  the restore it decided reaches the SMF, and its sessions go on on the other instances.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from nf.store.mongo import Doc
from tests.e2e.nfproc import NfProcess, running_nf
from tests.peers import NotificationReceiver, Received
from tests.smf_sim import PolicySim, SmfSim, Transport, Usage, session_ambr, unit_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MIB, GIB = 1024**2, 1024**3
ADMIN = {"X-API-Key": "demo-admin-key"}
PROV = "/provisioning/v1"
RG = 10
THROTTLED = "128 Kbps"
# What the background work of three busy processes gets to settle, at most.
SETTLE_S = 30.0


@dataclass
class Fleet:
    """The instances still alive, and a client that spreads requests over them."""

    nfs: list[NfProcess]
    client: httpx.AsyncClient
    sent: dict[str, int] = field(default_factory=dict)  # SBI base URL -> requests

    def transport(self, start: int) -> Transport:
        """Each request goes to the next live instance (so a retransmission, sent right
        after the original, always lands on another one)."""
        turn = [start]

        async def post(path: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
            nf = self.nfs[turn[0] % len(self.nfs)]
            turn[0] += 1
            self.sent[nf.sbi] = self.sent.get(nf.sbi, 0) + 1
            r = await self.client.post(nf.sbi + path, json=body)
            payload: Any = r.json() if r.content else None
            return r.status_code, payload, {k.lower(): v for k, v in r.headers.items()}

        return post

    def at(self, i: int) -> NfProcess:
        return self.nfs[i % len(self.nfs)]


def _networks(settings: Settings) -> str:
    grants = {"northwind": 4 * GIB, "bluepeak": 512 * MIB, "redmoor": 64 * MIB}
    nets = []
    for n in settings.networks:
        d = n.model_dump()
        d["default_grant_bytes"] = grants[n.id]
        if n.id == "redmoor":  # only the abandoned session below lives here
            d["validity_time_s"] = 2
        nets.append(d)
    return json.dumps(nets)


@pytest.fixture
def fleet_env(settings: Settings) -> dict[str, str]:
    return {
        "NF_NETWORKS": _networks(settings),
        "NF_CHF__SUPERVISION_SWEEP_INTERVAL_S": "0.3",
        "NF_CHF__RESERVATION_GRACE_S": "0",
        "NF_LEDGER__RESERVATION_SWEEP_INTERVAL_S": "0.3",
        "NF_NOTIFY__POLL_INTERVAL_S": "0.2",
        "NF_NOTIFY__LEASE_S": "5",
        "NF_NOTIFY__MAX_BACKOFF_S": "0.5",
    }


@pytest.fixture
def three(db_server: EmbeddedDb, settings: Settings, tmp_path: Path,
          fleet_env: dict[str, str]) -> Iterator[list[NfProcess]]:
    """Three instances, started at the same time (each waits for its own readiness)."""
    cms = [running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                      extra_env={**fleet_env, "NF_INSTANCE_ID": f"nf-{i}"}, own_group=True)
           for i in range(3)]
    with ExitStack() as stack, ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(cm.__enter__) for cm in cms]
        nfs, errors = [], []
        for cm, f in zip(cms, futures, strict=True):
            try:
                nfs.append(f.result())
                stack.push(cm.__exit__)  # every instance that started is stopped
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]
        yield nfs


async def _provision(client: httpx.AsyncClient, oam: str, supi: str, network: str,
                     plan: str | None) -> None:
    brand = {"bluepeak": "harbor", "northwind": "lumen", "redmoor": "cartwheel"}[network]
    body: dict[str, Any] = {"supi": supi, "homeNetwork": network, "brand": brand}
    if plan:
        body["planOfferId"] = plan
    r = await client.post(oam + PROV + "/subscribers", headers=ADMIN, json=body)
    assert r.status_code == 201, r.text


async def _balance(client: httpx.AsyncClient, oam: str, supi: str) -> dict[str, Any]:
    r = await client.get(f"{oam}{PROV}/subscribers/{supi}/balance", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _bucket(balance: dict[str, Any], offer: str) -> dict[str, Any]:
    return next(b for b in balance["buckets"] if b["offerId"] == offer)


@dataclass
class Drive:
    """One charging session driven until its plan says stop; what the SMF reported."""

    sim: SmfSim
    used: int = 0
    requests: int = 0
    last_grant: int = 0


async def _drive(sim: SmfSim, step: int, stop: Callable[[], bool], limit: int = 24) -> Drive:
    """Create, then use every grant in full and ask for more, with a retransmission of
    each update (to another instance) that must get the same answer; until no quota is
    granted, the final units come, or ``stop()``. The last grant is left unreported."""
    d = Drive(sim)
    ex = await sim.create(requested=step)
    assert ex.status == 201, ex.response
    d.requests += 1
    for _ in range(limit):
        info = unit_info(ex.response, RG)
        grant = sim.granted
        if grant == 0 or "finalUnitIndication" in info or stop():
            d.last_grant = grant
            return d
        ex = await sim.update(Usage(grant // 4, grant - grant // 4, "QUOTA_EXHAUSTED"),
                              requested=step)
        assert ex.status == 200, ex.response
        d.used += grant
        d.requests += 1
        again = await sim.retransmit()
        assert again.status == 200, again.response
        assert again.response["multipleUnitInformation"] == \
            ex.response["multipleUnitInformation"]
    raise AssertionError(f"{sim.supi}: still charging after {limit} updates")


async def _release(d: Drive) -> None:
    g = d.last_grant
    ex = await d.sim.release(Usage(g // 4, g - g // 4) if g else None)
    assert ex.status == 204, ex.response
    d.used += g
    d.requests += 1


def _updates(smf: NotificationReceiver, prefix: str) -> list[Received]:
    return smf.matching(lambda r: r.path == f"{prefix}/update")


def _speed(r: Received) -> str:
    return session_ambr(r.json["smPolicyDecision"])["downlink"]


async def _until(what: str, check: Callable[[], Any], timeout_s: float = SETTLE_S) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            ok = check()
            if asyncio.iscoroutine(ok):
                ok = await ok
            if ok:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover (asyncio.timeout raises first)


async def test_three_instances_share_one_database_safely(
        three: list[NfProcess], settings: Settings) -> None:
    capped, unlimited = "imsi-001020000000901", "imsi-001010000000902"
    owner, kid, quiet = "imsi-001010000000903", "imsi-001010000000904", "imsi-001010000000905"
    abandoned = "imsi-999001000000906"
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    edrs = mongo[settings.mongodb_database]["edrs"]
    try:
        async with NotificationReceiver() as smf, httpx.AsyncClient(
                http1=False, http2=True, timeout=20) as h2, httpx.AsyncClient(
                timeout=20) as care:
            fleet = Fleet(list(three), h2)
            a, b, c = three
            # -- provisioning, spread over the three OAM ports too --------------------------
            await _provision(care, a.oam, capped, "bluepeak", "harbor-capped-4gb")
            await _provision(care, b.oam, unlimited, "northwind", "lumen-unlimited")
            await _provision(care, c.oam, abandoned, "redmoor", "cartwheel-capped-5gb")
            for s in (owner, kid, quiet):
                await _provision(care, a.oam, s, "northwind", None)
            r = await care.post(b.oam + PROV + "/groups", headers=ADMIN,
                                json={"ownerSupi": owner, "offerId": "lumen-family-30gb"})
            assert r.status_code == 201, r.text
            gid = r.json()["groupId"]
            for s in (kid, quiet):
                r = await care.post(f"{c.oam}{PROV}/groups/{gid}/members", headers=ADMIN,
                                    json={"supi": s})
                assert r.status_code in (200, 201), r.text
            cap = _bucket(await _balance(care, a.oam, capped), "harbor-capped-4gb")
            allowance = _bucket(await _balance(care, b.oam, unlimited),
                                "lumen-unlimited")["quotaBytes"]

            # -- policies: two PDU sessions of one subscriber on two instances --------------
            pols = {
                "u1": PolicySim(h2, a.sbi, unlimited, smf.url("/u1"), pdu_session_id=1),
                "u2": PolicySim(h2, b.sbi, unlimited, smf.url("/u2"), pdu_session_id=2),
                "f0": PolicySim(h2, c.sbi, owner, smf.url("/f0")),
                "f1": PolicySim(h2, a.sbi, kid, smf.url("/f1")),
                "f2": PolicySim(h2, b.sbi, quiet, smf.url("/f2")),
            }
            for p in pols.values():
                assert (await p.create()).status_code == 201

            def throttled(*names: str) -> Callable[[], bool]:
                return lambda: all(any(_speed(x) == THROTTLED for x in _updates(smf, f"/{n}"))
                                   for n in names)

            # -- charging, every subscriber's sessions spread over the three ---------------
            def sim(supi: str, start: int, plmn: str, pdu: int) -> SmfSim:
                return SmfSim(fleet.transport(start), supi, plmn=plmn, pdu_session_id=pdu,
                              notify_uri=smf.url(f"/chg/{supi}/{pdu}"))

            drives = await asyncio.gather(
                _drive(sim(capped, 0, "00102", 1), 512 * MIB, lambda: False),
                _drive(sim(capped, 1, "00102", 2), 512 * MIB, lambda: False),
                _drive(sim(unlimited, 2, "00101", 1), 4 * GIB, throttled("u1", "u2")),
                _drive(sim(unlimited, 0, "00101", 2), 4 * GIB, throttled("u1", "u2")),
                _drive(sim(owner, 1, "00101", 1), 4 * GIB, throttled("f0")),
                _drive(sim(kid, 2, "00101", 1), 4 * GIB, throttled("f1")),
            )
            # An abandoned session: one update, then the SMF goes silent.
            lost = sim(abandoned, 1, "999001", 1)
            assert (await lost.create(requested=64 * MIB)).status == 201
            assert (await lost.update(Usage(3 * MIB, 7 * MIB), requested=64 * MIB)).status \
                == 200

            # Every policy is throttled exactly once (the quiet family member too: the pool
            # ran dry), however many instances saw the crossings.
            await _until("every policy throttled", throttled(*pols))
            await asyncio.sleep(2.0)  # time for any duplicate to show up
            for name in pols:
                got = [x for x in _updates(smf, f"/{name}") if _speed(x) == THROTTLED]
                assert len(got) == 1, (name, [(x.path, _speed(x)) for x in got])
                assert got[0].json["resourceUri"] == pols[name].location
            deliveries = [(x.path, x.body) for x in smf.requests]
            assert len(deliveries) == len(set(deliveries)), "a notification was sent twice"

            # Caps hold exactly: the blocking plan's two sessions end at the cap to the byte.
            for d in drives[:2]:
                await _release(d)
            assert drives[0].used + drives[1].used == cap["quotaBytes"]
            bal = _bucket(await _balance(care, c.oam, capped), "harbor-capped-4gb")
            assert (bal["usedBytes"], bal["reservedBytes"]) == (cap["quotaBytes"], 0)
            bal = _bucket(await _balance(care, c.oam, unlimited), "lumen-unlimited")
            assert bal["usedBytes"] + bal["reservedBytes"] == allowance
            r = await care.get(f"{a.oam}{PROV}/groups/{gid}", headers=ADMIN)
            group = r.json()
            assert group["pool"]["usedBytes"] + group["pool"]["reservedBytes"] == \
                group["pool"]["quotaBytes"]
            caps = {m["supi"]: (m["usedBytes"] + m["reservedBytes"], m["capBytes"])
                    for m in group["members"]}
            assert caps[owner][0] == caps[owner][1] and caps[kid][0] == caps[kid][1]

            # -- sweepers on three instances: the abandoned session is settled once ---------
            async def settled() -> bool:
                b_ = _bucket(await _balance(care, b.oam, abandoned), "cartwheel-capped-5gb")
                closes = await edrs.count_documents(
                    {"charging_data_ref": lost.ref, "event": "supervision_close"})
                return b_["reservedBytes"] == 0 and closes >= 1
            await _until("the abandoned session was not swept", settled)
            await asyncio.sleep(1.5)
            assert await edrs.count_documents(
                {"charging_data_ref": lost.ref, "event": "supervision_close"}) == 1
            b_ = _bucket(await _balance(care, a.oam, abandoned), "cartwheel-capped-5gb")
            assert (b_["usedBytes"], b_["reservedBytes"]) == (10 * MIB, 0)

            # -- SIGKILL one instance right after it answered ------------------------------
            smf.clear()
            r = await care.post(f"{b.oam}{PROV}/subscribers/{unlimited}/purchases",
                                headers=ADMIN, json={"offerId": "lumen-addon-1gb-7d"})
            assert r.status_code == 201, r.text
            os.killpg(b.proc.pid, signal.SIGKILL)
            b.proc.wait(10)
            fleet.nfs.remove(b)
            # The restore it decided reaches both of the subscriber's policies, at full speed.
            def restored() -> bool:
                return all(any(_speed(x) != THROTTLED for x in _updates(smf, f"/{n}"))
                           for n in ("u1", "u2"))
            await _until("the restore decided by the killed instance was lost", restored)
            for n in ("u1", "u2"):
                assert {_speed(x) for x in _updates(smf, f"/{n}")} == {"20 Mbps"}
            # Its sessions go on on the other two.
            for d in drives[2:]:
                g = d.sim.granted
                ex = await d.sim.update(Usage(g // 4, g - g // 4), requested=4 * GIB)
                assert ex.status == 200, ex.response
                d.used += g
                d.requests += 1
                d.last_grant = d.sim.granted
                await _release(d)
            for i, p in enumerate(pols.values()):
                p.base_url = fleet.at(i).sbi
                assert (await p.delete()).status_code == 204
            assert set(fleet.sent) == {a.sbi, b.sbi, c.sbi}
            bal = _bucket(await _balance(care, c.oam, unlimited), "lumen-unlimited")
            assert (bal["usedBytes"], bal["reservedBytes"]) == (allowance, 0)

            # Every charging request has exactly one EDR, however often it was sent.
            everyone = [capped, unlimited, owner, kid]

            async def all_recorded() -> bool:
                n = await edrs.count_documents({"kind": "charging", "supi": {"$in": everyone}})
                return n >= sum(d.requests for d in drives)
            await _until("EDRs missing", all_recorded)
            await asyncio.sleep(1.0)
            docs = await edrs.find({"kind": "charging", "supi": {"$in": everyone}}).to_list(
                None)
            keys = [(d["charging_data_ref"], d["invocation_sequence_number"]) for d in docs]
            assert len(keys) == len(set(keys)), "an EDR was written twice"
            assert len(docs) == sum(d.requests for d in drives)
            per_ref: dict[str, int] = {}
            for d in docs:
                per_ref[d["charging_data_ref"]] = per_ref.get(d["charging_data_ref"], 0) + 1
            assert sorted(per_ref.values()) == sorted(d.requests for d in drives)
    finally:
        await mongo.close()
