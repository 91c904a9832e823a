"""Gx and Sy against the real NF (``nf serve`` with its Diameter process, the real database):
one subscriber with a 5G SM policy (HTTP/2 SMF), a 4G Gx session (PCEF) and an Sy
subscription (a host network's PCRF) crosses the cap through the CHF; the throttle reaches
all three (SBI notification, RAR with the new APN-AMBR, SNR), and an add-on bought over the
provisioning API restores them. A RAR left unanswered is sent again; a PCEF answering RAA
5002 ends the session in the NF; a suspension releases a session by RAR
(Session-Release-Cause), through a DRA addressed to the PCEF behind it; another host
network's peer cannot reach a session; refusals carry 5030, 5003, 5002 and Sy's
Experimental-Result 5570.

A 4G-only subscriber's PGW speaks Gy and Gx on one connection: the Gy CCR-U that crosses
the cap brings the RAR on Gx; when the PGW restarts (Origin-State-Id up), its earlier Gx
sessions end. The time from the cap-crossing charging update (SBI or Gy) to the RAR's
arrival is printed (a measurement, not an assertion)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from nf.config import Settings
from nf.diameter import codec, gx, sy, umi
from nf.diameter.base import APP_GX, APP_GY, APP_SY
from nf.store.embedded import EmbeddedDb
from nf.store.mongo import Doc
from tests.diameter.client import PGW, REALM, mscc
from tests.diameter.nfdia import ORIGIN_REALM, diameter_nf
from tests.diameter.pcef import (
    BLUEPEAK_PGW,
    BLUEPEAK_REALM,
    DRA,
    GIB,
    PCRF,
    GxSession,
    Peer,
    V,
    apn_ambr,
    policy_env,
    provision_lumen,
    subscription,
    use_until_rar,
)
from tests.pcf.harness import ambr_of
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, httpx_transport

pytestmark = pytest.mark.e2e

LUMEN = {"X-API-Key": "demo-key-lumen"}
PROV = "/provisioning/v1"
FULL = (4_000_000, 20_000_000)  # lumen-unlimited: 4 / 20 Mbit/s
THROTTLED = (64_000, 128_000)  # past the cap: 64 / 128 kbit/s
ALLOWANCE = 15360 * 1024 * 1024  # lumen-unlimited's full-speed bytes
ADDON = 1024 * 1024 * 1024  # lumen-addon-1gb-7d


def _triggers(msg: codec.Message) -> set[int]:
    return {int(a.value) for a in codec.find_all(msg, gx.AVP_EVENT_TRIGGER, V)}


def _monitored(msg: codec.Message) -> int | None:
    """The bytes granted to the ``data-cap`` monitoring key (None: not monitored)."""
    info = codec.find(msg, umi.AVP_USAGE_MONITORING_INFORMATION, V)
    if info is None:
        return None
    assert codec.get_bytes(info, umi.AVP_MONITORING_KEY, V) == umi.MONITORING_KEY
    gsu = codec.find(info, umi.AVP_GRANTED_SERVICE_UNIT)
    assert gsu is not None
    return codec.get_int(gsu, umi.AVP_CC_TOTAL_OCTETS)


def _status(msg: codec.Message) -> dict[str, str | None]:
    return {str(codec.get_str(r, sy.AVP_POLICY_COUNTER_IDENTIFIER, V)):
            codec.get_str(r, sy.AVP_POLICY_COUNTER_STATUS, V)
            for r in codec.find_all(msg, sy.AVP_POLICY_COUNTER_STATUS_REPORT, V)}


async def test_the_cap_throttles_5g_gx_and_sy_at_once_and_an_addon_restores(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    supi, imsi = "imsi-001010000000501", "001010000000501"
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                         extra_env=policy_env(settings)) as (nf, port):
            await provision_lumen(client, nf.oam, supi)
            async with Peer(port, PGW, REALM) as pgw, Peer(port, PCRF, REALM) as pcrf:
                assert codec.result_code(await pgw.cer([APP_GX])) == codec.SUCCESS
                assert codec.result_code(await pcrf.cer([APP_SY])) == codec.SUCCESS
                # The 4G session: full speed, PLMN changes to be reported.
                session = GxSession(pgw, imsi, ORIGIN_REALM)
                cca = await session.initial()
                assert codec.result_code(cca) == codec.SUCCESS, cca.avps
                assert codec.get_int(cca, gx.AVP_CC_REQUEST_TYPE) == gx.INITIAL
                assert apn_ambr(cca) == FULL
                assert _triggers(cca) == {gx.PLMN_CHANGE, umi.USAGE_REPORT}
                assert _monitored(cca) == ALLOWANCE  # the plan's full-speed bytes, unused
                # The host network's PCRF subscribes to the data-cap counter.
                sy_sid = pcrf.session_id()
                sy_head = [codec.new_avp(codec.AVP_SESSION_ID, sy_sid),
                           codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_SY),
                           *pcrf.origin(),
                           codec.new_avp(codec.AVP_DESTINATION_REALM, ORIGIN_REALM.encode())]
                sla = await pcrf.call(sy.CMD_SL, APP_SY, [
                    *sy_head, codec.new_avp(sy.AVP_SL_REQUEST_TYPE, sy.SL_INITIAL, V),
                    subscription(imsi),
                    codec.new_avp(sy.AVP_POLICY_COUNTER_IDENTIFIER, "data-cap", V)])
                assert codec.result_code(sla) == codec.SUCCESS
                assert _status(sla) == {"data-cap": "normal"}
                # Refusals: an unknown counter, an unknown session, an unknown subscriber.
                bad = await pcrf.call(sy.CMD_SL, APP_SY, [
                    codec.new_avp(codec.AVP_SESSION_ID, pcrf.session_id()),
                    *sy_head[1:], codec.new_avp(sy.AVP_SL_REQUEST_TYPE, sy.SL_INITIAL, V),
                    subscription(imsi),
                    codec.new_avp(sy.AVP_POLICY_COUNTER_IDENTIFIER, "no-such-counter", V)])
                assert codec.get_int(bad, codec.AVP_RESULT_CODE) is None
                assert codec.result_code(bad) == 5570  # DIAMETER_UNKNOWN_POLICY_COUNTERS
                bad = await pcrf.call(sy.CMD_SL, APP_SY, [
                    codec.new_avp(codec.AVP_SESSION_ID, pcrf.session_id()),
                    *sy_head[1:],
                    codec.new_avp(sy.AVP_SL_REQUEST_TYPE, sy.SL_INTERMEDIATE, V)])
                assert codec.result_code(bad) == codec.UNKNOWN_SESSION_ID
                stranger = GxSession(pgw, "001010000009999", ORIGIN_REALM)
                assert codec.result_code(await stranger.initial()) == codec.USER_UNKNOWN
                # The same subscriber's 5G session.
                pol = PolicySim(client, nf.sbi, supi, smf.url("/smf/pol"))
                assert (await pol.create()).status_code == 201
                chg = SmfSim(httpx_transport(client, nf.sbi), supi,
                             notify_uri=smf.url("/smf/chg"))
                assert (await chg.create(requested=8 * GIB)).status == 201

                sent = await use_until_rar(chg, pgw)
                rar = pgw.pushed[-1]
                print(f"\nRAR latency (cap-crossing charging update -> RAR at the PCEF): "
                      f"{(rar.at - sent) * 1000:.1f} ms")
                assert codec.get_str(rar.msg, codec.AVP_SESSION_ID) == session.session_id
                assert codec.get_str(rar.msg, gx.AVP_DESTINATION_HOST) == PGW
                assert apn_ambr(rar.msg) == THROTTLED
                assert _monitored(rar.msg) is None  # throttled: monitoring stops
                assert _triggers(rar.msg) == {gx.PLMN_CHANGE}
                snr = await pcrf.wait_push(sy.CMD_SN)
                assert codec.get_str(snr.msg, codec.AVP_SESSION_ID) == sy_sid
                assert codec.get_str(snr.msg, gx.AVP_DESTINATION_HOST) == PCRF
                assert _status(snr.msg) == {"data-cap": "exhausted"}
                throttle = await smf.wait_for(lambda x: x.path == "/smf/pol/update")
                assert ambr_of(throttle) == {"uplink": "64 Kbps", "downlink": "128 Kbps"}
                print(f"SBI throttle latency (same update -> SmPolicyNotification at the "
                      f"SMF): {(throttle.monotonic - sent) * 1000:.1f} ms")

                # An add-on bought through the care API restores every session.
                seen_rar, seen_snr = len(pgw.pushed), len(pcrf.pushed)
                smf.clear()
                r = await client.post(f"{nf.oam}{PROV}/subscribers/{supi}/purchases",
                                      headers=LUMEN, json={"offerId": "lumen-addon-1gb-7d"})
                assert r.status_code == 201, r.text
                restore = await pgw.wait_push(codec.CMD_RAR, after=seen_rar)
                assert apn_ambr(restore.msg) == FULL
                assert _monitored(restore.msg) == ADDON  # re-armed with the add-on's bytes
                assert umi.USAGE_REPORT in _triggers(restore.msg)
                snr = await pcrf.wait_push(sy.CMD_SN, after=seen_snr)
                assert _status(snr.msg) == {"data-cap": "normal"}
                back = await smf.wait_for(lambda x: x.path == "/smf/pol/update")
                assert ambr_of(back)["downlink"] == "20 Mbps"

                # The PCEF reports usage of the key: the current decision, monitoring
                # re-armed (the bytes are charged over Nchf/Gy, never from the report).
                cca = await session.update(
                    codec.new_avp(gx.AVP_EVENT_TRIGGER, umi.USAGE_REPORT, V),
                    codec.new_avp(umi.AVP_USAGE_MONITORING_INFORMATION, [
                        codec.new_avp(umi.AVP_MONITORING_KEY, umi.MONITORING_KEY, V,
                                      mandatory=False),
                        codec.new_avp(umi.AVP_USED_SERVICE_UNIT, [
                            codec.new_avp(umi.AVP_CC_TOTAL_OCTETS, 1000)])], V,
                        mandatory=False))
                assert codec.result_code(cca) == codec.SUCCESS and apn_ambr(cca) == FULL
                assert _monitored(cca) == ADDON
                # Then both sessions end.
                assert codec.result_code(await session.terminate()) == codec.SUCCESS
                sta = await pcrf.call(codec.CMD_STR, APP_SY, [
                    *sy_head, codec.new_avp(295, 1)])  # Termination-Cause LOGOUT
                assert codec.result_code(sta) == codec.SUCCESS
                assert codec.result_code(await session.update()) == codec.UNKNOWN_SESSION_ID
                assert (await pol.delete()).status_code == 204

                # The PCRF restarts (Origin-State-Id 3 -> 4): its earlier subscription ends.
                async def slr(sid: str, kind: int, state: int) -> codec.Message:
                    return await pcrf.call(sy.CMD_SL, APP_SY, [
                        codec.new_avp(codec.AVP_SESSION_ID, sid), *sy_head[1:],
                        codec.new_avp(codec.AVP_ORIGIN_STATE_ID, state),
                        codec.new_avp(sy.AVP_SL_REQUEST_TYPE, kind, V), subscription(imsi)])

                old_sid, new_sid = pcrf.session_id(), pcrf.session_id()
                assert codec.result_code(await slr(old_sid, sy.SL_INITIAL, 3)) == codec.SUCCESS
                assert codec.result_code(await slr(new_sid, sy.SL_INITIAL, 4)) == codec.SUCCESS
                assert codec.result_code(await slr(old_sid, sy.SL_INTERMEDIATE, 3)) == \
                    codec.UNKNOWN_SESSION_ID
                assert codec.result_code(await slr(new_sid, sy.SL_INTERMEDIATE, 4)) == \
                    codec.SUCCESS


async def test_raa_5002_ends_the_gx_session_and_a_suspension_releases_one(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    supi, imsi = "imsi-001010000000502", "001010000000502"
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(db_server.uri, tz_aware=True)
    db = mongo[settings.mongodb_database]
    try:
        async with NotificationReceiver() as smf, httpx.AsyncClient(
                http1=False, http2=True, timeout=10) as client:
            with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                             extra_env={**policy_env(settings),
                                        "NF_NOTIFY__REQUEST_TIMEOUT_S": "1"}) as (nf, port):
                await provision_lumen(client, nf.oam, supi)
                async with Peer(port, PGW, REALM) as pgw:
                    assert codec.result_code(await pgw.cer([APP_GX])) == codec.SUCCESS
                    session = GxSession(pgw, imsi, ORIGIN_REALM)
                    assert codec.result_code(await session.initial()) == codec.SUCCESS
                    assert await db["sm_policies"].count_documents({"supi": supi}) == 1
                    # Another host network's PGW cannot reach the session by its Session-Id.
                    async with Peer(port, BLUEPEAK_PGW, BLUEPEAK_REALM) as other_net:
                        assert codec.result_code(await other_net.cer([APP_GX])) == \
                            codec.SUCCESS
                        forged = GxSession(other_net, imsi, ORIGIN_REALM)
                        forged.session_id = session.session_id
                        forged.number = 1
                        assert codec.result_code(await forged.update()) == \
                            codec.UNKNOWN_SESSION_ID
                        assert codec.result_code(await forged.terminate()) == \
                            codec.UNKNOWN_SESSION_ID
                    assert await db["sm_policies"].count_documents({"supi": supi}) == 1
                    assert codec.result_code(await session.update()) == codec.SUCCESS
                    # The throttle's first RAR goes unanswered: it is sent again.
                    pgw.push_result = None
                    chg = SmfSim(httpx_transport(client, nf.sbi), supi,
                                 notify_uri=smf.url("/smf/chg"))
                    assert (await chg.create(requested=8 * GIB)).status == 201
                    await use_until_rar(chg, pgw)
                    first = len(pgw.pushed)
                    # The PCEF lost the session (it restarted, say): it answers 5002.
                    pgw.push_result = codec.UNKNOWN_SESSION_ID
                    again = await pgw.wait_push(codec.CMD_RAR, after=first)
                    assert codec.get_str(again.msg, codec.AVP_SESSION_ID) == session.session_id
                    assert apn_ambr(again.msg) == THROTTLED
                    for _ in range(100):
                        if await db["sm_policies"].count_documents({"supi": supi}) == 0:
                            break
                        await asyncio.sleep(0.1)
                    assert await db["sm_policies"].count_documents({"supi": supi}) == 0
                    assert await db["outbox"].count_documents(
                        {"diameter_peer": PGW, "status": "gone", "attempts": 1}) == 1
                    edr = await db["edrs"].find_one({"supi": supi, "event": "terminated"})
                    assert edr is not None and edr.get("reason") == "smf-gone", edr
                    events = {d["event"]: d async for d in db["edrs"].find(
                        {"supi": supi, "kind": "policy"})}
                    assert set(events) == {"created", "throttled", "terminated"}
                    assert {d.get("interface") for d in events.values()} == {"gx"}
                    assert all("pdu_session_id" not in d for d in events.values())
                    # Nothing of it is left: a late CCR-U is told the session is unknown.
                    cca = await session.update()
                    assert codec.result_code(cca) == codec.UNKNOWN_SESSION_ID

                    # Another subscriber suspended through the care API: the PCF ends the
                    # session with a RAR carrying Session-Release-Cause; the PCEF's CCR-T
                    # then closes it.
                    pgw.push_result = codec.SUCCESS
                    other = "imsi-001010000000504"
                    await provision_lumen(client, nf.oam, other)
                    ended = GxSession(pgw, other.removeprefix("imsi-"), ORIGIN_REALM)
                    assert codec.result_code(await ended.initial()) == codec.SUCCESS
                    seen = len(pgw.pushed)
                    r = await client.patch(f"{nf.oam}{PROV}/subscribers/{other}",
                                           headers=LUMEN, json={"status": "suspended"})
                    assert r.status_code == 200, r.text
                    rar = await pgw.wait_push(codec.CMD_RAR, after=seen)
                    assert codec.get_str(rar.msg, codec.AVP_SESSION_ID) == ended.session_id
                    assert codec.get_int(rar.msg, gx.AVP_SESSION_RELEASE_CAUSE, V) == 1
                    assert apn_ambr(rar.msg) == (None, None)
                    assert codec.result_code(await ended.terminate()) == codec.SUCCESS
                    for _ in range(50):
                        if await db["sm_policies"].count_documents({"supi": other}) == 0:
                            break
                        await asyncio.sleep(0.1)
                    assert await db["sm_policies"].count_documents({"supi": other}) == 0
                    # A suspended subscriber gets no new session.
                    again = GxSession(pgw, other.removeprefix("imsi-"), ORIGIN_REALM)
                    assert codec.result_code(await again.initial()) == 5003

                # Behind a DRA: the RAR goes over the DRA's connection, addressed to the
                # PCEF that opened the session (Destination-Host), not to the DRA.
                third = "imsi-001010000000506"
                await provision_lumen(client, nf.oam, third)
                async with Peer(port, DRA, REALM) as dra:
                    assert codec.result_code(await dra.cer([APP_GX])) == codec.SUCCESS
                    relayed = GxSession(dra, third.removeprefix("imsi-"), ORIGIN_REALM,
                                        client="pgw7.northwind.test")
                    assert codec.result_code(await relayed.initial()) == codec.SUCCESS
                    r = await client.patch(f"{nf.oam}{PROV}/subscribers/{third}",
                                           headers=LUMEN, json={"status": "suspended"})
                    assert r.status_code == 200, r.text
                    rar = await dra.wait_push(codec.CMD_RAR)
                    assert codec.get_str(rar.msg, codec.AVP_SESSION_ID) == relayed.session_id
                    assert codec.get_str(rar.msg, gx.AVP_DESTINATION_HOST) == \
                        "pgw7.northwind.test"
                    assert codec.get_str(rar.msg, codec.AVP_DESTINATION_REALM) == REALM
                    # The PCF no longer has the policy (removed meanwhile, its tombstone
                    # expired): the Gx session is nothing but that policy, so the CCR-T is
                    # told it is unknown, as another network's peer is; a PCEF ends it all
                    # the same.
                    await db["sm_policies"].delete_many({"supi": third})
                    assert codec.result_code(await relayed.terminate()) == \
                        codec.UNKNOWN_SESSION_ID
                    assert codec.result_code(await relayed.update()) == \
                        codec.UNKNOWN_SESSION_ID
    finally:
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


async def _gy(pgw: Peer, sid: str, rtype: int, number: int, imsi: str,
              used: int | None = None) -> codec.Message:
    return await pgw.call(codec.CMD_CCR, APP_GY, [
        codec.new_avp(codec.AVP_SESSION_ID, sid), *pgw.origin(),
        codec.new_avp(codec.AVP_DESTINATION_REALM, ORIGIN_REALM.encode()),
        codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
        codec.new_avp(461, "32251@3gpp.org"),  # Service-Context-Id
        codec.new_avp(gx.AVP_CC_REQUEST_TYPE, rtype),
        codec.new_avp(gx.AVP_CC_REQUEST_NUMBER, number), subscription(imsi),
        codec.new_avp(455, 1),  # Multiple-Services-Indicator
        mscc(rg=10, rsu=True, used=used)])


def _granted(cca: codec.Message) -> int:
    gsu = codec.find(codec.find_all(cca, 456)[0], 431)
    assert gsu is not None, cca.avps
    return int(codec.get_int(gsu, 421) or 0)


async def test_a_gy_ccr_crossing_the_cap_brings_the_rar_on_gx(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    supi, imsi = "imsi-001010000000503", "001010000000503"
    async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
        with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                         extra_env=policy_env(settings)) as (nf, port):
            await provision_lumen(client, nf.oam, supi)
            async with Peer(port, PGW, REALM) as pgw:
                cea = await pgw.cer([APP_GX, APP_GY])
                assert codec.result_code(cea) == codec.SUCCESS
                session = GxSession(pgw, imsi, ORIGIN_REALM)
                assert apn_ambr(await session.initial()) == FULL
                gy_sid = pgw.session_id()
                cca = await _gy(pgw, gy_sid, gx.INITIAL, 0, imsi)
                assert codec.result_code(cca) == codec.SUCCESS, cca.avps
                granted = _granted(cca)
                for n in range(1, 6):
                    seen, sent = len(pgw.pushed), time.monotonic()
                    cca = await _gy(pgw, gy_sid, gx.UPDATE, n, imsi, used=granted)
                    assert codec.result_code(cca) == codec.SUCCESS, cca.avps
                    granted = _granted(cca)
                    try:
                        rar = await pgw.wait_push(codec.CMD_RAR, after=seen, timeout_s=1.0)
                        break
                    except TimeoutError:
                        continue
                else:
                    raise AssertionError("the cap was never reached over Gy")
                print(f"\nRAR latency (cap-crossing Gy CCR-U -> RAR on Gx): "
                      f"{(rar.at - sent) * 1000:.1f} ms")
                assert codec.get_str(rar.msg, codec.AVP_SESSION_ID) == session.session_id
                assert apn_ambr(rar.msg) == THROTTLED
                # The PGW restarts (Origin-State-Id 7 -> 8): the sessions it opened before
                # end here too; one that carried no Origin-State-Id is left alone.
                before = GxSession(pgw, imsi, ORIGIN_REALM, state_id=7)
                assert codec.result_code(await before.initial()) == codec.SUCCESS
                after = GxSession(pgw, imsi, ORIGIN_REALM, state_id=8)
                assert codec.result_code(await after.initial()) == codec.SUCCESS
                assert codec.result_code(await before.update()) == codec.UNKNOWN_SESSION_ID
                assert codec.result_code(await after.update()) == codec.SUCCESS
                assert codec.result_code(await _gy(pgw, gy_sid, gx.TERMINATION, n + 1, imsi,
                                                   used=0)) == codec.SUCCESS
                assert codec.result_code(await session.terminate()) == codec.SUCCESS
            # It restarts again and its CER says so (8 -> 9): the session it opened under 8
            # ends with no request of it carrying the new value.
            async with Peer(port, PGW, REALM) as again:
                cea = await again.cer([APP_GX, APP_GY], extra=[
                    codec.new_avp(codec.AVP_ORIGIN_STATE_ID, 9)])
                assert codec.result_code(cea) == codec.SUCCESS
                after.peer, after.state_id = again, None
                for _ in range(100):
                    rc = codec.result_code(await after.update())
                    if rc == codec.UNKNOWN_SESSION_ID:
                        break
                    assert rc == codec.SUCCESS
                    await asyncio.sleep(0.05)
                assert rc == codec.UNKNOWN_SESSION_ID
