"""The ``nf`` command line: exit codes and messages (no servers started here)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from typer.testing import CliRunner

from nf.cli import cli, listening
from nf.config import Settings
from nf.demo import DEMO_CONFIG
from nf.store import embedded

ROOT = Path(__file__).resolve().parents[2]
TEST_YAML = ROOT / "tests" / "data" / "nf-test.yaml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("NF_"):
            monkeypatch.delenv(k)


runner = CliRunner()


def test_check_config_accepts_a_good_file() -> None:
    r = runner.invoke(cli, ["check-config", str(TEST_YAML)])
    assert r.exit_code == 0, r.output
    assert "ok:" in r.output and "3 host networks" in r.output


def test_check_config_names_the_bad_key_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  oam_port: -5\n  shutdown_grace: 3\n", encoding="utf-8")
    r = runner.invoke(cli, ["check-config", str(bad)])
    assert r.exit_code == 2
    assert "server.oam_port" in r.output and "server.shutdown_grace" in r.output
    assert "Traceback" not in r.output


def test_check_config_sees_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NF_SERVER__H2_MAX_CONCURRENT_STREAMS", "3")
    r = runner.invoke(cli, ["check-config", str(TEST_YAML)])
    assert r.exit_code == 2 and "server.h2_max_concurrent_streams" in r.output


def test_check_config_missing_file_exits_2(tmp_path: Path) -> None:
    r = runner.invoke(cli, ["check-config", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "cannot read" in r.output


def test_real_entry_point_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("log_level: LOUD\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    p = subprocess.run([sys.executable, "-m", "nf.cli", "check-config", str(bad)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2 and "log_level" in p.stderr


def test_serve_refuses_an_unknown_server() -> None:
    r = runner.invoke(cli, ["serve", "--server", "nginx"])
    assert r.exit_code == 2 and "granian or hypercorn" in r.output


def test_demo_refuses_a_bad_port() -> None:
    r = runner.invoke(cli, ["demo", "--sbi-port", "70000"])
    assert r.exit_code == 2


def test_demo_refuses_bad_environment_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("NF_SERVER__WORKERS", "many")
    r = runner.invoke(cli, ["demo", "--data", str(tmp_path / "d"), "--db-port", "0"])
    assert r.exit_code == 2 and "server.workers" in r.output
    assert not (tmp_path / "d").exists()


def test_no_arguments_shows_every_command() -> None:
    r = runner.invoke(cli, [])
    for name in ("serve", "check-config", "db", "seed-demo", "demo"):
        assert name in r.output


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_db_build_reports_an_existing_binary(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    fake = _script(tmp_path / "secantusd-rs", "exit 0\n")
    monkeypatch.setenv("NF_SECANTUS_BIN", str(fake))
    r = runner.invoke(cli, ["db", "build"])
    assert r.exit_code == 0 and "already built" in r.output


def test_db_build_without_cargo_falls_back(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    r = runner.invoke(cli, ["db", "build"])
    assert r.exit_code == 1 and "cargo not found" in r.output


def test_failed_cargo_build_is_reported_with_its_log(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _script(bindir / "cargo", "echo 'error: could not compile secantus' >&2\nexit 101\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(bindir))
    ok, msg = embedded.build_rust()
    assert not ok and "exit 101" in msg and str(embedded.build_log()) in msg
    assert "could not compile" in embedded.build_log().read_text()
    r = runner.invoke(cli, ["db", "build"])
    assert r.exit_code == 1


def test_an_unusable_client_ca_bundle_stops_the_nf(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("hello\n", encoding="utf-8")
    cfg = tmp_path / "nf.yaml"
    cfg.write_text(
        "server: {tls_cert_file: c.pem, tls_key_file: k.pem}\n"
        "networks:\n"
        f'  - {{id: a, name: A, plmn_ids: ["00101"], sbi_port: 8101, '
        f"tls_client_ca_file: {bad}}}\n", encoding="utf-8")
    r = runner.invoke(cli, ["check-config", str(cfg)])
    assert r.exit_code == 2, r.output
    assert f"networks[a].tls_client_ca_file: {bad} is not a usable CA bundle" in r.output
    cfg.write_text(cfg.read_text().replace(str(bad), str(tmp_path / "absent.pem")))
    r = runner.invoke(cli, ["check-config", str(cfg)])
    assert r.exit_code == 2 and "absent.pem is not a usable CA bundle" in r.output


def test_serve_refuses_a_listener_network_given_by_hand(tmp_path: Path) -> None:
    """``server.listener_network`` is how ``nf serve`` tells a child which network it
    serves; given to ``nf serve`` itself, the shared port would serve that network."""
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    cfg = tmp_path / "nf.yaml"
    cfg.write_text(
        "server: {tls_cert_file: c.pem, tls_key_file: k.pem}\n"
        f'networks:\n  - {{id: a, name: A, plmn_ids: ["00101"], sbi_port: 8101, '
        f"tls_client_ca_file: {ca}}}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env["NF_SERVER__LISTENER_NETWORK"] = "a"
    p = subprocess.run([sys.executable, "-m", "nf.cli", "serve", "--config", str(cfg)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "server.listener_network is set by nf serve" in p.stderr


def test_each_listener_gets_its_address_workers_and_client_ca(tmp_path: Path) -> None:
    from nf.config import Settings
    from nf.sbi.runner import listener

    cfg = tmp_path / "nf.yaml"
    cfg.write_text(
        "server: {tls_cert_file: c.pem, tls_key_file: k.pem, tls_client_ca_file: s.pem, "
        "sbi_host: 10.0.0.1, workers: 3}\n"
        "networks:\n"
        '  - {id: a, name: A, plmn_ids: ["00101"], sbi_port: 8101, '
        "tls_client_ca_file: a.pem}\n"
        '  - {id: b, name: B, plmn_ids: ["00102"], sbi_port: 8102, sbi_host: 10.0.0.2, '
        "sbi_workers: 1, tls_client_ca_file: b.pem}\n", encoding="utf-8")
    s = Settings.load(cfg)
    assert listener(s, "sbi") == ("10.0.0.1", 8000, 3, Path("s.pem"))
    assert listener(s, "oam") == ("127.0.0.1", 8080, 1, None)

    def on(net: str) -> Settings:
        return Settings.load(cfg, server={**s.server.model_dump(), "listener_network": net})

    assert listener(on("a"), "sbi") == ("10.0.0.1", 8101, 3, Path("a.pem"))
    assert listener(on("b"), "sbi") == ("10.0.0.2", 8102, 1, Path("b.pem"))
    assert listener(on("b"), "oam") == ("127.0.0.1", 8080, 1, None)


def test_the_start_up_line_names_every_protocol_the_sbi_port_speaks(tmp_path: Path) -> None:
    demo = Settings.load(DEMO_CONFIG).server
    assert demo.sbi_http1  # the demo turns HTTP/1.1 on: the line must say so
    assert listening(demo) == (f"SBI (h2c and HTTP/1.1) on http://{demo.sbi_host}:"
                               f"{demo.sbi_port}, OAM on http://{demo.oam_host}:"
                               f"{demo.oam_port}")
    plain = Settings.load(TEST_YAML).server.model_copy(update={"sbi_http1": False})
    assert listening(plain).startswith("SBI (h2c) on http://")
    tls = plain.model_copy(update={"tls_cert_file": tmp_path / "c.pem",
                                   "tls_key_file": tmp_path / "k.pem"})
    assert listening(tls).startswith("SBI (HTTP/2 over TLS, ALPN h2) on https://")
    assert ", OAM on https://" in listening(tls)
