"""A Gx session and an Sy subscription captured on loopback and decoded by Wireshark's
dissector (Debian's ``tshark``): CCR/CCA, RAR/RAA (the throttle at the cap), SLR/SLA,
SNR/SNA and STR/STA each decode as what they are, with no expert warning (unknown AVP or
vendor, bad length, non-zero padding, unknown command)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from nf.config import Settings
from nf.diameter import codec, sy
from nf.diameter.base import APP_GX, APP_SY
from nf.store.embedded import EmbeddedDb
from tests.diameter.client import PGW, REALM
from tests.diameter.nfdia import ORIGIN_REALM, diameter_nf
from tests.diameter.pcef import (
    GIB,
    PCRF,
    GxSession,
    Peer,
    V,
    policy_env,
    provision_lumen,
    subscription,
    use_until_rar,
)
from tests.diameter.tshark import capturing, decoded_cleanly
from tests.smf_sim import SmfSim, httpx_transport

pytestmark = pytest.mark.e2e


async def test_gx_and_sy_decode_without_expert_warning(
        db_server: EmbeddedDb, settings: Settings, tmp_path: Path) -> None:
    cap = tmp_path / "policy.pcapng"
    supi, imsi = "imsi-001010000000505", "001010000000505"
    async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
        with diameter_nf(db_server.uri, settings.mongodb_database, tmp_path,
                         extra_env=policy_env(settings)) as (nf, port):
            await provision_lumen(client, nf.oam, supi)
            with capturing(port, cap, tmp_path / "tshark.log"):
                async with Peer(port, PGW, REALM) as pgw, Peer(port, PCRF, REALM) as pcrf:
                    await pgw.cer([APP_GX])
                    await pcrf.cer([APP_SY])
                    session = GxSession(pgw, imsi, ORIGIN_REALM)
                    await session.initial()
                    head = [codec.new_avp(codec.AVP_SESSION_ID, pcrf.session_id()),
                            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_SY),
                            *pcrf.origin(),
                            codec.new_avp(codec.AVP_DESTINATION_REALM, ORIGIN_REALM.encode())]
                    await pcrf.call(sy.CMD_SL, APP_SY, [
                        *head, codec.new_avp(sy.AVP_SL_REQUEST_TYPE, sy.SL_INITIAL, V),
                        subscription(imsi)])
                    chg = SmfSim(httpx_transport(client, nf.sbi), supi,
                                 notify_uri="http://127.0.0.1:9/chg")
                    assert (await chg.create(requested=8 * GIB)).status == 201
                    await use_until_rar(chg, pgw)
                    await pcrf.wait_push(sy.CMD_SN)
                    await session.update()
                    await session.terminate()
                    await pcrf.call(codec.CMD_STR, APP_SY, [*head, codec.new_avp(295, 1)])
                await asyncio.sleep(0.5)
    decoded_cleanly(cap, port, (272, 258, sy.CMD_SL, sy.CMD_SN, 275))
