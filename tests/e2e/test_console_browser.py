"""The care console in a real Chromium (Debian's ``chromium``, driven by Playwright; no
browser download) against ``nf serve``: sign in as a brand, find a subscriber, see the
bucket bars and the usage chart, buy an add-on for a throttled subscriber and see the real
HTTP/2 SMF receive the restored speed, fail to open another brand's subscriber, sign out.
Screenshots of the main pages go to the test's tmp dir (``NF_CONSOLE_SHOTS`` names another
directory to keep them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from nf.catalog import CatalogHolder
from nf.config import Settings
from nf.demo import seed
from nf.demo.subscribers import demo_subscribers
from nf.ledger.mongo import MongoLedger
from nf.store.embedded import EmbeddedDb
from tests import debian
from tests.e2e.nfproc import running_nf
from tests.pcf.harness import ambr_of, use_until_throttled
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, httpx_transport

pytestmark = pytest.mark.e2e

GIB = 1024**3
# The real binary of Debian's package (``/usr/bin/chromium`` is a shell wrapper).
CHROMIUM = Path("/usr/lib/chromium/chromium")


def _chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing and we are root."""
    debian.package("chromium", CHROMIUM)
    return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Debian's chromium package is missing and cannot be installed here "
                    "(needs root and apt-get): apt-get install chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=900)
        subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip("apt-get could not install Debian's chromium package")
    return CHROMIUM


# Which elements stick out of the viewport (for the failure message).
_WIDEST = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' +
  Math.round(e.getBoundingClientRect().right))"""


SHOTS = ("sign-in", "subscriber", "confirm", "subscriber-restored", "subscriber-phone",
         "overview")


def _shots_dir(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("NF_CONSOLE_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _shot_sizes(shots: Path) -> dict[str, bool]:
    return {n: (shots / f"{n}.png").is_file() and (shots / f"{n}.png").stat().st_size > 1000
            for n in SHOTS}


def _networks(settings: Settings) -> str:
    return json.dumps([{**n.model_dump(), "default_grant_bytes": 8 * GIB}
                       for n in settings.networks])


async def test_care_agent_in_the_browser(db_server: EmbeddedDb, settings: Settings,
                                         tmp_path: Path) -> None:
    binary = _chromium()
    from playwright.async_api import async_playwright, expect

    shots = _shots_dir(tmp_path)
    # The demo dataset: lumen's unlimited-plan subscriber (with a roaming pass) and
    # harbor's capped one.
    await seed(settings, MongoLedger)
    assert settings.catalog_dir is not None
    rows = demo_subscribers(settings, CatalogHolder.from_dir(settings.catalog_dir).current)
    l_row = next(r for r in rows if r["brand"] == "lumen" and r["plan"] == "lumen-unlimited")
    h_row = next(r for r in rows if r["brand"] == "harbor")
    lumen_sub, lumen_gpsi, harbor_sub = (
        str(l_row["supi"]), str(l_row["gpsi"]), str(h_row["supi"]))
    async with NotificationReceiver() as smf, httpx.AsyncClient(
            http1=False, http2=True, timeout=10) as client:
        # Lumen's notices go to a webhook (the receiver): the page lists them.
        env = {"NF_NETWORKS": _networks(settings), "NF_NOTICES__BRANDS": json.dumps({
            "lumen": {"webhook_url": smf.url("/crm/lumen"), "webhook_secret": "w" * 32,
                      "webhook_enabled": True}})}
        with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                        extra_env=env) as nf:
            # A live session that crosses the cap: the SMF is throttled.
            pol = PolicySim(client, nf.sbi, lumen_sub, smf.url("/smf/pol"))
            assert (await pol.create()).status_code == 201
            chg = SmfSim(httpx_transport(client, nf.sbi), lumen_sub,
                         notify_uri=smf.url("/smf/chg"))
            assert (await chg.create(requested=8 * GIB)).status == 201
            throttle = await use_until_throttled(chg, smf, "/smf/pol/update", step=8 * GIB,
                                                 limit=6)
            assert ambr_of(throttle)["downlink"] == "128 Kbps"
            smf.clear()

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(binary),
                                                   args=["--no-sandbox"])
                try:
                    page = await browser.new_page(viewport={"width": 1100, "height": 900})
                    await page.goto(nf.oam + "/console/")
                    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
                    await page.screenshot(path=str(shots / "sign-in.png"))
                    await page.get_by_label("Your brand's care API key").fill(
                        "demo-key-lumen")
                    await page.get_by_role("button", name="Sign in").click()

                    await page.get_by_label("SUPI or MSISDN").fill(lumen_gpsi)
                    await page.get_by_role("button", name="Find").click()
                    await expect(page.get_by_role("heading", name=lumen_sub)).to_be_visible()
                    await expect(page.locator("#speed-reason")).to_have_text("throttled")
                    bars = page.locator(".bucket .bar")
                    assert await bars.count() >= 1
                    # The plan's bucket is used up: its bar is all "used".
                    used = await bars.first.locator("rect.used").get_attribute("width")
                    assert used is not None and float(used) == 100.0
                    await expect(page.locator("svg.chart rect.full").first).to_be_visible()
                    assert await page.locator("svg.chart rect").count() >= 1
                    await page.screenshot(path=str(shots / "subscriber.png"), full_page=True)

                    await page.get_by_label("Offer").select_option("lumen-addon-1gb-7d")
                    await page.get_by_role("button", name="Buy…").click()
                    await expect(page.get_by_role("heading", name="Confirm")).to_be_visible()
                    await page.screenshot(path=str(shots / "confirm.png"))
                    await page.locator("#confirm").click()
                    # Said by the offer's name, with its price.
                    await expect(page.get_by_role("status")).to_contain_text(
                        "1 GB for 7 days (3.00 USD)")
                    # The real SMF receives the restored speed.
                    restore = await smf.wait_for(lambda x: x.path == "/smf/pol/update",
                                                 timeout_s=10)
                    assert ambr_of(restore) == {"uplink": "4 Mbps", "downlink": "20 Mbps"}
                    # ... and the page shows it on the live session.
                    for _ in range(20):
                        await page.reload()
                        if await page.locator(".policy-reason").first.inner_text() != \
                                "throttled":
                            break
                        await page.wait_for_timeout(250)
                    await expect(page.locator(".policy-speed").first).to_have_text(
                        "20000 kbps")
                    await expect(page.locator("#speed-reason")).not_to_have_text("throttled")
                    # The purchase's notice, sent to the brand's webhook, is listed.
                    await smf.wait_for(lambda x: x.path == "/crm/lumen" and
                                       "addon_purchased" in x.body.decode(), timeout_s=10)
                    await page.reload()
                    notice = page.locator("#notices li.notice", has_text="addon_purchased")
                    await expect(notice.first).to_contain_text("Webhook")
                    await expect(page.locator("#fraud-cases")).to_be_visible()
                    # The purchase's EDR (from its durable counter change) says what was
                    # bought, at which price.
                    await expect(page.locator("ol.timeline li", has_text="purchase").first
                                 ).to_contain_text("1 GB for 7 days (3.00 USD)")
                    await page.screenshot(path=str(shots / "subscriber-restored.png"),
                                          full_page=True)

                    # Another brand's subscriber is not found, by SUPI or by search.
                    resp = await page.goto(f"{nf.oam}/console/subscribers/{harbor_sub}")
                    assert resp is not None and resp.status == 404
                    await expect(page.get_by_role("alert")).to_contain_text("no subscriber")
                    await page.goto(f"{nf.oam}/console/find?q={harbor_sub}")
                    await expect(page.get_by_role("alert")).to_contain_text(
                        "No subscriber found")

                    # Phone width: nothing wider than the screen.
                    await page.set_viewport_size({"width": 390, "height": 844})
                    await page.goto(f"{nf.oam}/console/subscribers/{lumen_sub}")
                    wide = await page.evaluate(
                        "document.documentElement.scrollWidth")
                    assert wide <= 390, await page.evaluate(_WIDEST)
                    await page.screenshot(path=str(shots / "subscriber-phone.png"),
                                          full_page=True)

                    await page.get_by_role("button", name="Sign out").click()
                    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
                    await page.goto(f"{nf.oam}/console/subscribers/{lumen_sub}")
                    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

                    # The operator's overview: the live session of lumen on northwind.
                    await page.set_viewport_size({"width": 1100, "height": 900})
                    await page.get_by_label("Your brand's care API key").fill(
                        "demo-admin-key")
                    await page.get_by_role("button", name="Sign in").click()
                    # Back where the sign-in was asked for, then the overview.
                    await expect(page.get_by_role("heading", name=lumen_sub)).to_be_visible()
                    await page.get_by_role("link", name="Overview").click()
                    await expect(page.get_by_role("heading", name="Operator overview")
                                 ).to_be_visible()
                    row = page.locator("tr", has=page.locator("th", has_text="lumen")).filter(
                        has_text="northwind")
                    await expect(row.locator("td").nth(1)).to_have_text("1")
                    assert int(await page.locator("#chf-total").inner_text()) >= 3
                    await page.screenshot(path=str(shots / "overview.png"), full_page=True)
                finally:
                    await browser.close()
            assert (await pol.delete()).status_code == 204
    assert _shot_sizes(shots) == {n: True for n in SHOTS}
