"""Pushes enqueued by the other processes of ``nf serve`` wake the Diameter process at
once (``nf.notify.wake``), against the real NF with its outbox poll made 30 s long: the
throttle RAR of a cap crossed over the SBI (enqueued by an SBI worker) and the restore RAR
of an add-on bought over the provisioning API (enqueued by the OAM process) both reach
the PCEF within a second, and ``/metrics`` counts the wakes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from nf.config import Settings
from nf.diameter import codec
from nf.diameter.base import APP_GX
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import PGW, REALM
from tests.diameter.nfdia import ORIGIN_REALM, diameter_nf
from tests.diameter.pcef import (
    GIB,
    GxSession,
    Peer,
    apn_ambr,
    policy_env,
    provision_lumen,
    use_until_rar,
)
from tests.peers import NotificationReceiver
from tests.smf_sim import SmfSim, httpx_transport

pytestmark = pytest.mark.e2e

POLL_S = 30.0  # the outbox poll: a push found by it would arrive far too late here
WITHIN_S = 1.0
THROTTLED = (64_000, 128_000)
FULL = (4_000_000, 20_000_000)


def _wakes(metrics: str, outcome: str) -> float:
    line = f'nf_diameter_push_wakes_total{{outcome="{outcome}"}} '
    return sum(float(ln.split()[-1]) for ln in metrics.splitlines() if ln.startswith(line))


async def test_pushes_of_the_sbi_and_oam_processes_wake_the_diameter_process(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    supi, imsi = "imsi-001010000000511", "001010000000511"
    env = {**policy_env(settings), "NF_DIAMETER__PUSH_POLL_INTERVAL_S": str(POLL_S)}
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                         extra_env=env) as (nf, port):
            await provision_lumen(client, nf.oam, supi)
            async with Peer(port, PGW, REALM) as pgw:
                assert codec.result_code(await pgw.cer([APP_GX])) == codec.SUCCESS
                session = GxSession(pgw, imsi, ORIGIN_REALM)
                assert apn_ambr(await session.initial()) == FULL
                # The cap crossed over the SBI: the PCF's throttle is enqueued by the SBI
                # worker that charged the update.
                chg = SmfSim(httpx_transport(client, nf.sbi), supi,
                             notify_uri=smf.url("/smf/chg"))
                assert (await chg.create(requested=8 * GIB)).status == 201
                sent = await use_until_rar(chg, pgw)
                throttle = pgw.pushed[-1]
                assert apn_ambr(throttle.msg) == THROTTLED
                print(f"\ncap crossed over the SBI -> RAR: {(throttle.at - sent) * 1000:.0f} ms")
                assert throttle.at - sent < WITHIN_S
                # An add-on bought over the provisioning API: enqueued by the OAM process.
                seen = len(pgw.pushed)
                t0 = time.monotonic()
                r = await client.post(f"{nf.oam}/provisioning/v1/subscribers/{supi}/purchases",
                                      headers={"X-API-Key": "demo-key-lumen"},
                                      json={"offerId": "lumen-addon-1gb-7d"})
                assert r.status_code == 201, r.text
                restore = await pgw.wait_push(codec.CMD_RAR, after=seen, timeout_s=5)
                print(f"purchase -> restore RAR: {(restore.at - t0) * 1000:.0f} ms")
                assert apn_ambr(restore.msg) == FULL
                assert restore.at - t0 < WITHIN_S
                metrics = (await client.get(f"{nf.oam}/metrics")).text
                assert _wakes(metrics, "sent") >= 2, metrics
                assert _wakes(metrics, "received") >= 2
                assert _wakes(metrics, "ignored") == 0
                assert codec.result_code(await session.terminate()) == codec.SUCCESS
