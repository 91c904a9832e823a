"""The ``diameter:`` settings are checked at load, naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nf.config import Settings
from nf.errors import ConfigError

TEST_CONFIG = Path(__file__).resolve().parents[1] / "data" / "nf-test.yaml"
NET = {"realms": ["epc.test"], "peers": ["pgw1.test"]}


def _load(**diameter: object) -> Settings:
    return Settings.load(TEST_CONFIG, diameter=diameter)


def test_valid_and_defaults() -> None:
    s = _load(enabled=True, networks={"northwind": NET})
    d = s.diameter
    assert (d.port, d.watchdog_s, d.tls) == (3868, 30.0, False)
    assert d.networks["northwind"].peers == ["pgw1.test"]


@pytest.mark.parametrize(("diameter", "says"), [
    ({"networks": {"nowhere": NET}}, "'nowhere' is no host network id"),
    ({"networks": {"northwind": NET, "bluepeak": NET}}, "listed under northwind and bluepeak"),
    ({"networks": {"northwind": {"realms": [], "peers": ["p"]}}}, "realms"),
    ({"tls_cert_file": "/x.pem"}, "tls_cert_file and tls_key_file go together"),
    ({"watchdog_s": 0.5}, "watchdog_s"),
    ({"port": 70000}, "diameter.port"),
])
def test_bad_settings_named(diameter: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(**diameter)
    assert says in str(e.value)
