"""Configuration: YAML plus NF_* environment, validated with messages naming the bad key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from nf.config import ServerSettings, Settings
from nf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TEST_YAML = ROOT / "tests" / "data" / "nf-test.yaml"
DEMO_YAML = ROOT / "nf" / "demo" / "nf.yaml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("NF_"):
            monkeypatch.delenv(k)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "nf.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def error_of(path: Path | None = None, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as e:
        Settings.load(path, **overrides)
    return str(e.value)


@pytest.mark.parametrize("path", [TEST_YAML, DEMO_YAML])
def test_shipped_files_are_valid(path: Path) -> None:
    s = Settings.load(path)
    assert [n.id for n in s.networks] == ["northwind", "bluepeak", "redmoor"]
    assert s.network_for_plmn("999001") is not None and s.network_for_plmn("99999") is None
    assert s.catalog_dir is not None and s.catalog_dir.is_absolute()


def test_defaults_without_a_file() -> None:
    s = Settings.load(None)
    assert s.server.sbi_port == 8000 and s.server.oam_port == 8080
    assert s.server.server == "granian" and s.networks == []


def test_environment_overrides_the_file_including_nested_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NF_SERVER__SBI_PORT", "9001")
    monkeypatch.setenv("NF_SERVER__SERVER", "hypercorn")
    monkeypatch.setenv("NF_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("NF_MONGODB_URI", "mongodb://db.example:27017")
    monkeypatch.setenv("NF_CHF__RESERVATION_GRACE_S", "7")
    monkeypatch.setenv("NF_EXTRA_PARTS", '["site.addons:make"]')
    s = Settings.load(TEST_YAML)
    assert s.server.sbi_port == 9001 and s.server.server == "hypercorn"
    assert s.server.oam_port == 8080  # untouched siblings keep the file's values
    assert s.log_level == "DEBUG" and s.mongodb_uri == "mongodb://db.example:27017"
    assert s.chf.reservation_grace_s == 7
    assert s.extra_parts == ["site.addons:make"]
    assert s.instance_id == "test-nf"


def test_nf_config_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NF_CONFIG", str(TEST_YAML))
    assert Settings.load().instance_id == "test-nf"


def test_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NF_SERVER__WORKERS", "0")
    msg = error_of(TEST_YAML)
    assert "server.workers" in msg and "greater than or equal to 1" in msg


def test_every_bad_key_is_named(tmp_path: Path) -> None:
    p = write(tmp_path, """
server:
  sbi_port: 70000
  sbi_prot: 1
  max_body_bytes: 12
networks:
  - id: Bad_Id
    name: x
    plmn_ids: ["0010"]
unknown_top: true
""")
    msg = error_of(p)
    assert msg.startswith(f"{p} is invalid")
    for key in ("server.sbi_port", "server.sbi_prot", "server.max_body_bytes",
                "networks.0.id", "networks.0.plmn_ids", "unknown_top"):
        assert key in msg, (key, msg)


def test_cross_field_rules(tmp_path: Path) -> None:
    p = write(tmp_path, """
networks:
  - {id: a, name: A, plmn_ids: ["00101"]}
  - {id: b, name: B, plmn_ids: ["00101"]}
""")
    assert "00101 belongs to more than one host network" in error_of(p)
    p = write(tmp_path, "server: {tls_cert_file: /tmp/c.pem}\n")
    assert "tls_cert_file and tls_key_file must be set together" in error_of(p)
    p = write(tmp_path, "extra_parts: ['not a module path']\n")
    assert "extra_parts.0" in error_of(p)


@pytest.mark.parametrize(("text", "expected"), [
    ("server: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "the top level must be a mapping"),
])
def test_unreadable_files(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in error_of(tmp_path / "absent.yaml")


def test_former_ledger_names_still_load(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "ledger:\n  op_ring_size: 64\n  op_retention_s: 60\n")
    assert Settings.load(path).ledger.seq_retention_s == 60
    monkeypatch.setenv("NF_LEDGER__OP_RETENTION_S", "90")
    assert Settings.load(None).ledger.seq_retention_s == 90
    both = write(tmp_path, "ledger:\n  op_retention_s: 60\n  seq_retention_s: 30\n")
    monkeypatch.delenv("NF_LEDGER__OP_RETENTION_S")
    assert Settings.load(both).ledger.seq_retention_s == 30
    assert "seq_retention_s" in error_of(write(tmp_path, "ledger:\n  op_retention_s: -1\n"))


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert Settings.load(write(tmp_path, "")).server.sbi_port == 8000


def test_settings_are_frozen() -> None:
    s = Settings.load(TEST_YAML)
    with pytest.raises(ValidationError):
        s.server.sbi_port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.instance_id = "x"  # type: ignore[misc]


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _fields(ann, f"{prefix}{name}.")
        else:
            out.append((prefix + name, ann))
    return out


TIME_WORDS = ("timeout", "interval", "grace", "backoff", "lease", "delay", "holding",
              "validity", "ttl", "period", "duration", "age")
UNITS = ("_s", "_ms", "_bytes", "_pct")


def test_units_are_in_the_names() -> None:
    """Durations and sizes say their unit; every float is a duration in this NF."""
    fields = _fields(Settings) + _fields(ServerSettings, "server.")
    from nf.config import HostNetwork

    fields += _fields(HostNetwork, "networks.")
    assert len(fields) > 30
    offenders = []
    for name, ann in fields:
        leaf = name.rsplit(".", 1)[-1]
        if ann is float and not leaf.endswith(("_s", "_ms")):
            offenders.append(name)
        if any(w in leaf for w in TIME_WORDS) and not leaf.endswith(UNITS):
            offenders.append(name)
    assert offenders == []


def test_helm_chart_config_is_valid() -> None:
    """The chart's default config must pass the same validation as `nf check-config`."""
    import yaml

    values = yaml.safe_load((ROOT / "helm" / "nf" / "values.yaml").read_text(encoding="utf-8"))
    s = Settings.load(None, **values["config"])
    assert s.server.shutdown_grace_s == values["config"]["server"]["shutdown_grace_s"]


def test_host_network_listener_rules(tmp_path: Path) -> None:
    """A host network's own SBI listener: mTLS with its own CA bundle, on a port of its
    own, behind server TLS; each refusal names the network and what is missing."""
    tls = "server: {tls_cert_file: c.pem, tls_key_file: k.pem, sbi_port: 8000, " \
          "oam_port: 8080}\n"
    net_a = '{id: a, name: A, plmn_ids: ["00101"], sbi_port: 8101, ' \
            'tls_client_ca_file: a.pem}'
    ok = Settings.load(write(tmp_path, f"{tls}networks:\n  - {net_a}\n"))
    assert [n.id for n in ok.listener_networks()] == ["a"]
    assert ok.networks[0].sbi_host is None and ok.networks[0].sbi_workers is None

    cases = [
        ("networks:\n  - " + net_a + "\n", "networks[a].sbi_port: a host network's own "
         "SBI listener needs TLS (server.tls_cert_file and server.tls_key_file)"),
        (tls + 'networks:\n  - {id: a, name: A, plmn_ids: ["00101"], sbi_port: 8101}\n',
         "host network a: its own SBI listener (sbi_port) needs tls_client_ca_file"),
        (tls + 'networks:\n  - {id: a, name: A, plmn_ids: ["00101"], '
         'tls_client_ca_file: a.pem, sbi_workers: 2}\n',
         "host network a: tls_client_ca_file, sbi_workers only apply to its own SBI "
         "listener; set sbi_port too"),
        (tls + 'networks:\n  - {id: a, name: A, plmn_ids: ["00101"], sbi_port: 8080, '
         'tls_client_ca_file: a.pem}\n',
         "networks[a].sbi_port: port 8080 is already server.oam_port"),
        (tls + "networks:\n  - " + net_a + '\n  - {id: b, name: B, plmn_ids: ["00102"], '
         'sbi_port: 8101, tls_client_ca_file: b.pem}\n',
         "networks[b].sbi_port: port 8101 is already networks[a].sbi_port"),
        (tls.replace("oam_port: 8080", "oam_port: 8080, listener_network: b")
         + "networks:\n  - " + net_a + "\n",
         "server.listener_network: 'b' is no host network with its own sbi_port"),
    ]
    for text, expected in cases:
        assert expected in error_of(write(tmp_path, text)), text
