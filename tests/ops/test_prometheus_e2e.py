"""A real Prometheus (Debian's package) scrapes a running ``nf serve`` while an SMF runs a
charging session past its cap and the SMSC goes away; the chart's rules (rendered with
short ``for:`` values) take the expected alerts to pending/firing, the ones with no cause
stay quiet, and every query of the chart's dashboard evaluates and returns data."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import httpx
import pytest

from nf.clock import SystemClock
from nf.config import Settings
from nf.store.embedded import EmbeddedDb, free_port
from nf.store.mongo import Db
from tests.e2e.nfproc import running_nf
from tests.ledger import helpers as h
from tests.ops import prom
from tests.pcf.harness import ambr_of, use_until_throttled
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, httpx_transport
from tests.subnotify.smsc import PASSWORD, SYSTEM_ID, running_smsc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SUPI = "imsi-001010000007777"
GPSI = "msisdn-34600777000"
MIB = 1024 * 1024
T = TypeVar("T")
# Expected from this run: the SMSC outage, an NRF that never answers, and (with its
# target at 0 s) the throttle's push latency. Quiet: the rest.
FIRING = {"NfSmscNotBound", "NfNrfNotRegistered", "NfThrottleLatencyHigh"}
QUIET = {"NfCapCrossedWithoutNotification", "NfEffectsBacklog", "NfEdrWriterLag",
         "NfDatabaseErrors", "NfCongestion", "NfNotReady", "NfFraudCasesOpen", "NfSmsFailing"}


def _rules() -> dict[str, object]:
    sets = ["prometheusRule.rateWindow=30s", "prometheusRule.alerts.throttleLatency.seconds=0"]
    for name in ("throttleLatency", "nrfNotRegistered", "smscNotBound", "effectsBacklog",
                 "edrWriterLag", "databaseErrors", "congestion", "notReady", "smsFailing",
                 "fraudCasesOpen"):
        sets.append(f"prometheusRule.alerts.{name}.for=2s")
    # Between the PCF counting a throttle and the SMF's answer one scrape may see the
    # difference: a few seconds of "for" is what the chart's 10 minutes are for.
    sets.append("prometheusRule.alerts.capWithoutNotification.for=10s")
    return prom.rule_groups(sets)


async def test_alerts_and_dashboard_against_a_real_prometheus(
        db_server: EmbeddedDb, settings: Settings, db: Db, tmp_path: Path) -> None:
    prom.tools()
    groups = _rules()
    t0 = time.monotonic()
    ledger = h.make_ledger(db, settings, h.TEST_CATALOG)
    await ledger.ensure_indexes()
    await h.subscriber(ledger, SystemClock().now(), SUPI, "t-unlimited", brand="testco",
                       gpsi=GPSI)
    with running_smsc(tmp_path) as smsc:
        env = {
            "NF_CATALOG_DIR": str(h.TEST_CATALOG),
            "NF_SMS__ENABLED": "true", "NF_SMS__PORT": str(smsc.port),
            "NF_SMS__SYSTEM_ID": SYSTEM_ID, "NF_SMS__PASSWORD": PASSWORD,
            "NF_SMS__BRANDS": json.dumps({"testco": {"source_addr": "TestCo"}}),
            "NF_NOTICES__POLL_INTERVAL_S": "0.5",
            # An NRF that is not there: the registration never succeeds.
            "NF_NRF__URI": f"http://127.0.0.1:{free_port()}",
            # A brand with rules of its own shows in the open cases from the start.
            "NF_FRAUD__BRANDS": json.dumps({"testco": {}}),
        }
        async with NotificationReceiver() as smf, httpx.AsyncClient(
                http1=False, http2=True, timeout=10) as client:
            with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                            extra_env=env) as nf, prom.running_prometheus(
                    tmp_path, nf.oam.removeprefix("http://"), groups) as p:
                await _wait(lambda: p.query("nf_policy_speed_changes_total"),
                            "the first scrape", p)
                # The session runs past its cap: the SMF is throttled, the subscriber
                # gets the usage and throttle SMS.
                pol = PolicySim(client, nf.sbi, SUPI, smf.url("/smf/pol"))
                assert (await pol.create()).status_code == 201
                chg = SmfSim(httpx_transport(client, nf.sbi), SUPI,
                             notify_uri=smf.url("/smf/chg"))
                assert (await chg.create(requested=3 * MIB)).status == 201
                throttle = await use_until_throttled(chg, smf, "/smf/pol/update",
                                                     step=3 * MIB, limit=10)
                assert ambr_of(throttle)["downlink"] == "128 Kbps"
                await smsc.wait(lambda rs: any(r["pdu"] == "submit_sm" for r in rs))
                # A malformed request: the errors panel has something to show.
                bad = await client.post(nf.sbi + "/nchf-convergedcharging/v3/chargingdata",
                                        content=b"{", headers={
                                            "content-type": "application/json"})
                assert bad.status_code == 400
                seen: dict[str, set[str]] = {}

                def firing(names: set[str]) -> bool:
                    for name, st in p.alerts().items():
                        seen.setdefault(name, set()).update(st)
                    return all("firing" in seen.get(n, ()) for n in names)

                # The push's latency fires while it is inside the rate window.
                await _wait(lambda: firing({"NfThrottleLatencyHigh"}),
                            "the throttle latency alert", p)
                # Bound, registered nowhere, ready, before the SMSC goes away.
                assert [r["value"][1] for r in p.query("max(nf_smsc_bound)")] == ["1"]
                assert [r["value"][1] for r in p.query("max(nf_nrf_registered)")] == ["0"]
                assert [r["value"][1] for r in p.query("max(nf_ready)")] == ["1"]
                smsc.proc.terminate()
                await _wait(lambda: firing(FIRING), f"{sorted(FIRING)} firing", p)
                assert not QUIET & {a for a, st in seen.items() if "firing" in st}, seen
                assert p.targets_up()

                empty, failed = [], []
                for title, expr in prom.dashboard_queries():
                    try:
                        if not p.query(expr):
                            empty.append((title, expr))
                    except AssertionError as e:
                        failed.append((title, expr, str(e)))
                assert failed == []
                assert empty == []
                await _screenshot(p, tmp_path)
    assert time.monotonic() - t0 < 90


async def _wait(probe: Callable[[], T], what: str, p: prom.Prometheus,
                timeout_s: float = 30) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus: {what} not seen in {timeout_s:g} s; alerts: "
                                 f"{p.alerts()}; its log: {p.log}")
        await asyncio.sleep(0.25)


# The real binary of Debian's package (``/usr/bin/chromium`` is a shell wrapper).
CHROMIUM = Path("/usr/lib/chromium/chromium")
SHOWN = ("Requests per second by service operation", "Throttle latency",
         "Cap crossings and restores", "EDR writer lag", "NF CPU per request",
         "SMS sent and failed per brand")


async def _screenshot(p: prom.Prometheus, tmp: Path) -> None:
    """Some of the dashboard's queries on Prometheus's own graph page, in Debian's Chromium
    when it is installed (``NF_OPS_SHOT`` names the file to keep; the README's picture)."""
    if not _have(CHROMIUM):
        return
    from playwright.async_api import async_playwright

    queries = [(t, e) for t, e in prom.dashboard_queries() if t.startswith(SHOWN)]
    params = {}
    for i, (_, expr) in enumerate(queries[:6]):
        params |= {f"g{i}.expr": expr, f"g{i}.tab": "0", f"g{i}.range_input": "30s"}
    shot = Path(os.environ.get("NF_OPS_SHOT") or tmp / "prometheus-graphs.png")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM),
                                           args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            await page.goto(f"{p.url}/graph?{urlencode(params)}")
            await page.wait_for_selector(".graph svg", timeout=15_000)
            await page.wait_for_timeout(1000)
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    assert _size(shot) > 10_000


def _have(path: Path) -> bool:
    return path.exists()


def _size(path: Path) -> int:
    return path.stat().st_size
