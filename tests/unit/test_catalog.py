"""The offer catalogue: the demo loads, errors name file, offer and field, versions hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nf.catalog import CatalogError, CatalogHolder, load_catalog
from nf.catalog.model import BasePlan, FamilyPlan, RoamingPass
from nf.cli import cli

DEMO = Path(__file__).resolve().parents[2] / "nf" / "demo" / "catalog"
BRANDS = {"lumen", "harbor", "cartwheel", "nimbus", "pebble", "orbit", "tidal", "sprout",
          "quarry"}

GOOD = """
brand: {id: acme, name: Acme}
offers:
- {id: acme-plan, version: 1, kind: plan, name: Plan, allowance_mb: 100,
   speed: {uplink_kbps: 1000, downlink_kbps: 5000}, at_cap: {action: block}}
"""


def test_demo_catalogue_has_every_kind_for_nine_brands() -> None:
    cat = load_catalog(DEMO)
    assert set(cat.brands) == BRANDS
    for b in BRANDS:
        offers = cat.offers_of(b)
        plans = [o for o in offers if isinstance(o, BasePlan)]
        assert {p.at_cap.action for p in plans} == {"throttle", "block"}
        assert sum(o.kind == "addon" for o in offers) >= 2
        assert any(isinstance(o, RoamingPass) and o.zone for o in offers)
        assert any(isinstance(o, FamilyPlan) for o in offers)
        assert any(o.kind == "speed_boost" for o in offers)
    harbor = cat.brand("harbor")
    assert harbor is not None and harbor.topup_url


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp


def test_errors_name_file_offer_and_field(tmp_path: Path) -> None:
    _write(tmp_path, "acme.yaml", """
brand: {id: acme, name: Acme}
offers:
- {id: acme-plan, version: 1, kind: plan, name: Plan, allowance_mb: -5,
   speed: {uplink_kbps: 1000, downlink_kbps: 5000}, at_cap: {action: throttle}}
- {id: acme-roam, version: 0, kind: roaming_pass, name: R, quota_mb: 1,
   duration_hours: 24, zone_name: z, zone: ["12"]}
- {id: acme-x, version: 1, kind: teleport, name: X}
""")
    with pytest.raises(CatalogError) as e:
        load_catalog(tmp_path)
    text = "\n".join(e.value.problems)
    assert "acme.yaml: offer 'acme-plan' field allowance_mb" in text
    assert "acme.yaml: offer 'acme-plan' field at_cap" in text and "throttle_speed" in text
    assert "offer 'acme-roam' field version" in text
    assert "offer 'acme-roam' field zone.0" in text
    assert "offer 'acme-x'" in text


@pytest.mark.parametrize(("text", "needle"), [
    ("brand: {id: other, name: O}\noffers: []\n", "must match the file name"),
    ("brand: {id: acme, name: A, block_final_unit_action: REDIRECT}\n", "topup_url"),
    ("brand: {id: acme, name: A}\nsurprise: 1\n", "field surprise"),
    ("[1, 2]\n", "top level must be a mapping"),
    ("brand: {id: acme\n", "not valid YAML"),
    (GOOD + GOOD.split("offers:")[1], "appears more than once"),
])
def test_brand_file_errors(tmp_path: Path, text: str, needle: str) -> None:
    _write(tmp_path, "acme.yaml", text)
    with pytest.raises(CatalogError) as e:
        load_catalog(tmp_path)
    assert any(p.startswith("acme.yaml:") and needle in p for p in e.value.problems), \
        e.value.problems


def test_offer_ids_unique_across_brands(tmp_path: Path) -> None:
    _write(tmp_path, "acme.yaml", GOOD)
    _write(tmp_path, "beta.yaml", GOOD.replace("id: acme, name: Acme", "id: beta, name: B"))
    with pytest.raises(CatalogError) as e:
        load_catalog(tmp_path)
    assert "beta.yaml: offer 'acme-plan' field id: already defined in acme.yaml" in \
        e.value.problems[0]


def test_reload_requires_a_new_version_for_new_terms(tmp_path: Path) -> None:
    _write(tmp_path, "acme.yaml", GOOD)
    holder = CatalogHolder.from_dir(tmp_path)
    _write(tmp_path, "acme.yaml", GOOD.replace("allowance_mb: 100", "allowance_mb: 200"))
    with pytest.raises(CatalogError) as e:
        holder.reload()
    assert "terms changed but version 1 is already in use" in e.value.problems[0]
    old = holder.current.offer("acme-plan")
    assert old is not None and isinstance(old[1], BasePlan) and old[1].allowance_mb == 100
    _write(tmp_path, "acme.yaml", GOOD.replace("allowance_mb: 100", "allowance_mb: 200")
           .replace("version: 1", "version: 2"))
    new = holder.reload().offer("acme-plan")
    assert new is not None and new[1].version == 2
    _write(tmp_path, "acme.yaml", GOOD)  # going back to version 1 is refused
    with pytest.raises(CatalogError) as e:
        holder.reload()
    assert "lower than 2" in e.value.problems[0]


def test_cli_catalog_check(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["catalog", "check", str(DEMO)])
    assert r.exit_code == 0 and "9 brands" in r.output
    shutil.copy(DEMO / "lumen.yaml", tmp_path / "lumen.yaml")
    text = (tmp_path / "lumen.yaml").read_text().replace("allowance_mb: 2048",
                                                         "allowance_mb: lots")
    (tmp_path / "lumen.yaml").write_text(text)
    r = runner.invoke(cli, ["catalog", "check", str(tmp_path)])
    assert r.exit_code == 2
    assert "lumen.yaml: offer 'lumen-capped-2gb' field allowance_mb" in r.output
