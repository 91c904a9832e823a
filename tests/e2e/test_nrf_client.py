"""The NRF client's worker against a scripted NRF (a real HTTP/2 server, tests/peers.py):
register both profiles, heartbeat with JSON Patch at the NRF's timer, register again after
a 404 and after failures, deregister when the app stops. The clock is injected; only the
waits between rounds are real (short)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from nf.clock import SystemClock
from nf.config import Settings
from nf.nrf.part import NrfPart
from nf.nrf.profile import instance_id
from nf.runtime import Runtime
from tests.peers import NotificationReceiver, Received, Reply

ROOT = Path(__file__).resolve().parents[2]
NFM = "/nnrf-nfm/v1/nf-instances/"


def runtime(uri: str, role: str = "oam", **nrf: object) -> Runtime:
    s = Settings.load(ROOT / "tests" / "data" / "nf-test.yaml",
                      nrf={"uri": uri, "heartbeat_s": 1, "initial_backoff_s": 0.05,
                           "max_backoff_s": 0.2, **nrf})
    return Runtime(settings=s, clock=SystemClock(), db=None,  # type: ignore[arg-type]
                   role=role)  # type: ignore[arg-type]


def calls(nrf: NotificationReceiver, method: str, nf_type_id: str) -> list[Received]:
    return [r for r in nrf.requests if r.method == method and r.path == NFM + nf_type_id]


async def test_register_heartbeat_404_outage_and_deregister() -> None:
    async with NotificationReceiver() as nrf:
        rt = runtime(nrf.base_url)
        chf, pcf = (instance_id(rt.settings, t) for t in ("CHF", "PCF"))

        def put(r: Received) -> Reply:
            body: dict[str, Any] = r.json
            return Reply(201, {**body, "heartBeatTimer": 1})

        nrf.respond(NFM, put, method="PUT")
        nrf.respond(NFM, Reply(204), method="PATCH")
        nrf.respond(NFM, Reply(204), method="DELETE")
        part = NrfPart(rt)
        assert [w.__name__ for w in part.workers()] == ["run"]
        task = asyncio.create_task(part.run())
        await nrf.wait_for(lambda r: r.method == "PATCH" and r.path == NFM + pcf, 10)
        assert rt.reports["nrf"]()["CHF"]["state"] == "registered"  # type: ignore[index]
        registered = rt.metrics.nrf_registered
        assert registered.labels("CHF")._value.get() == 1
        first = calls(nrf, "PUT", chf)[0]
        assert first.http_version == "2"
        assert first.json["nfType"] == "CHF" and first.json["nfInstanceId"] == chf
        patch = calls(nrf, "PATCH", chf)[0]
        assert patch.header("content-type") == "application/json-patch+json"
        assert patch.json == [{"op": "replace", "path": "/nfStatus", "value": "REGISTERED"}]

        # The NRF has lost the CHF profile: the heartbeat's 404 brings a new PUT.
        puts = len(calls(nrf, "PUT", chf))
        nrf.respond(NFM + chf, Reply(404), method="PATCH", times=1)
        await nrf.wait_for(lambda r: len(calls(nrf, "PUT", chf)) > puts, 10)

        # An outage (500s): the NF keeps trying with backoff and registers once it is back.
        puts = len(calls(nrf, "PUT", pcf))
        nrf.respond(NFM + pcf, Reply(503), times=3)
        await nrf.wait_for(lambda r: r.status == 503, 10)
        states: set[str] = set()
        state, failed = "", 0
        for _ in range(200):
            state = rt.reports["nrf"]()["PCF"]["state"]  # type: ignore[index]
            states.add(state)
            failed = len([r for r in nrf.requests if r.status == 503])
            if failed == 3 and state == "registered":
                break
            await asyncio.sleep(0.05)
        assert failed == 3 and state == "registered" and "retrying" in states
        assert len(calls(nrf, "PUT", pcf)) > puts

        # A graceful stop deregisters both.
        rt.stopping.set()
        await asyncio.wait_for(task, 10)
        assert calls(nrf, "DELETE", chf) and calls(nrf, "DELETE", pcf)
        assert rt.reports["nrf"]()["CHF"]["state"] == "registering"  # type: ignore[index]
        assert registered.labels("CHF")._value.get() == 0
        assert registered.labels("PCF")._value.get() == 0


@pytest.mark.parametrize("role", ["sbi"])
def test_runs_once_per_instance_only_in_the_oam_process(role: str) -> None:
    rt = runtime("http://127.0.0.1:9", role)
    assert NrfPart(rt).workers() == []
    assert "nrf" not in rt.reports


def test_off_without_uri() -> None:
    s = Settings.load(ROOT / "tests" / "data" / "nf-test.yaml")
    rt = Runtime(settings=s, clock=SystemClock(), db=None, role="oam")  # type: ignore[arg-type]
    part = NrfPart(rt)
    assert part.workers() == [] and rt.reports["nrf"]() == "off"


async def test_a_lost_profile_is_registered_again_although_heartbeats_succeed() -> None:
    """An NRF that lost the CHF profile but answers every heartbeat with 204 (free5GC's
    does): reading the profile back gets 404, and the NF registers it again."""
    async with NotificationReceiver() as nrf:
        rt = runtime(nrf.base_url, heartbeat_s=1, profile_check_s=0.2)
        chf = instance_id(rt.settings, "CHF")
        nrf.respond(NFM, lambda r: Reply(201, {**r.json, "heartBeatTimer": 1}),
                    method="PUT")
        nrf.respond(NFM, Reply(204), method="PATCH")
        nrf.respond(NFM, Reply(200, {"nfStatus": "REGISTERED"}), method="GET")
        nrf.respond(NFM, Reply(204), method="DELETE")
        part = NrfPart(rt)
        task = asyncio.create_task(part.run())
        try:
            await nrf.wait_for(lambda r: r.method == "GET" and r.path == NFM + chf, 10)
            assert len(calls(nrf, "PUT", chf)) == 1  # a 200 read-back changes nothing
            nrf.respond(NFM + chf, Reply(404), method="GET", times=1)
            await nrf.wait_for(lambda r: len(calls(nrf, "PUT", chf)) == 2, 10)
            assert not [r for r in calls(nrf, "PATCH", chf) if r.status != 204]
            for _ in range(100):  # the PUT's answer reaches the state machine
                if rt.reports["nrf"]()["CHF"]["state"] == "registered":  # type: ignore[index]
                    break
                await asyncio.sleep(0.05)
            assert rt.reports["nrf"]()["CHF"]["state"] == "registered"  # type: ignore[index]
        finally:
            rt.stopping.set()
            await asyncio.wait_for(task, 10)
