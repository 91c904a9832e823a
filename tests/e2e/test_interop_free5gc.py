"""Interoperability with an independent SBI client: free5gc's spec-generated Go clients and
models (``github.com/free5gc/openapi``, pinned in tests/interop/go.mod) drive the real
``nf serve`` over h2c prior knowledge, so conformance is not judged only by our own models.

The Go program (tests/interop) is built once per source/go.sum version and cached under
``$XDG_CACHE_HOME/mvno-nf`` (``~/.cache/mvno-nf``). Without ``go`` on PATH the test is
skipped; with ``go`` it always runs, and a build failure is a test failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from nf.config import Settings
from nf.store.embedded import EmbeddedDb
from tests.e2e.nfproc import ROOT, running_nf
from tests.jwt_issuer import Issuer, plmn

pytestmark = pytest.mark.e2e

INTEROP = ROOT / "tests" / "interop"
PROVISIONING = "/provisioning/v1"
LUMEN = {"X-API-Key": "demo-key-lumen"}
SUPI = "imsi-001010000077001"
UNKNOWN_SUPI = "imsi-001010000077999"
PLAN = "lumen-capped-2gb"
UPDATES = 3
BUILD_TIMEOUT_S = 900
_KBPS = {"bps": 0.001, "Kbps": 1, "Mbps": 10**3, "Gbps": 10**6, "Tbps": 10**9}


def _sources_digest(go: str) -> str:
    h = hashlib.sha256()
    files = [INTEROP / "go.mod", INTEROP / "go.sum", *sorted(INTEROP.glob("*.go"))]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
    h.update(version.encode())
    return h.hexdigest()[:20]


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mvno-nf"


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never fetch another toolchain, never rewrite go.mod/go.sum, no VCS stamping (the
    # checkout may be a bare copy), a static binary.
    env.update({"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false",
                "CGO_ENABLED": "0"})
    return env


@pytest.fixture(scope="session")
def interop_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("`go` is not installed: cannot build the free5gc interop client "
                    "(tests/interop); CI has Go")
    cached = _cache_root() / f"interop-{_sources_digest(go)}" / "interop"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    out = tmp_path_factory.mktemp("interop-build") / "interop"
    built = subprocess.run([go, "build", "-trimpath", "-o", str(out), "."], cwd=INTEROP,
                           env=_go_env(), capture_output=True, text=True,
                           timeout=BUILD_TIMEOUT_S)
    if built.returncode != 0:
        pytest.fail(f"go build of tests/interop failed:\n{built.stdout}\n{built.stderr}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"interop.{os.getpid()}.partial")
    shutil.copy2(out, partial)
    os.replace(partial, cached)  # atomic: a concurrent run never sees half a binary
    return cached


def _run_client(exe: Path, sbi: str, supi: str, token: str | None
                ) -> tuple[int, dict[str, Any], str]:
    args = [str(exe), "-sbi", sbi, "-supi", supi, "-plmn", "00101",
            "-updates", str(UPDATES), "-timeout", "10s"]
    if token is not None:
        args += ["-token", token]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    try:
        summary: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"interop client printed no JSON (exit {proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}")
    return proc.returncode, summary, proc.stderr


def _kbps(rate: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?) (bps|Kbps|Mbps|Gbps|Tbps)", rate)
    assert m, rate
    return float(m.group(1)) * _KBPS[m.group(2)]


def _checks(summary: dict[str, Any]) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in summary["checks"]}


def test_free5gc_clients_drive_policy_and_charging(
    interop_client: Path, db_server: EmbeddedDb, settings: Settings, tmp_path: Path
) -> None:
    # OAuth2 on: the generated clients send the token through their own OAuth2 hook.
    issuer = Issuer("interop-nrf")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    token = issuer.token(aud=["CHF", "PCF"], consumerPlmnId=plmn("00101"),
                         scope="nchf-convergedcharging npcf-smpolicycontrol")
    env = {"NF_OAUTH2__REQUIRED": "true", "NF_OAUTH2__ISSUER": issuer.iss,
           "NF_OAUTH2__JWKS_FILE": str(jwks)}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path,
                    extra_env=env) as nf, \
            httpx.Client(timeout=10) as oam:
        made = oam.post(f"{nf.oam}{PROVISIONING}/subscribers", headers=LUMEN, json={
            "supi": SUPI, "homeNetwork": "northwind", "planOfferId": PLAN,
            "gpsi": "msisdn-15550077001"})
        assert made.status_code == 201, made.text
        speed = made.json()["speed"]

        # Without the token the very first request is refused.
        anon_code, anon, _ = _run_client(interop_client, nf.sbi, SUPI, None)
        assert anon_code == 1 and any(f.startswith("pcf.create.status")
                                      for f in anon["failures"]), anon["failures"]

        code, summary, stderr = _run_client(interop_client, nf.sbi, SUPI, token)
        assert code == 0 and summary["ok"], (
            "free5gc client found mismatches:\n" + "\n".join(summary["failures"]) + stderr)

        balance = oam.get(f"{nf.oam}{PROVISIONING}/subscribers/{SUPI}/balance",
                          headers=LUMEN)
        assert balance.status_code == 200, balance.text

        # The same client against a subscriber the NF does not know must fail loudly:
        # the checks are real, not a script that always says ok.
        bad_code, bad, _ = _run_client(interop_client, nf.sbi, UNKNOWN_SUPI, token)

    checks = _checks(summary)
    # Every step of the flow was checked, on HTTP/2, with the generated clients' decoding.
    for step in ("pcf.create", "pcf.get", "chf.create", "chf.update1", f"chf.update{UPDATES}",
                 "chf.update-unknown-ref", "chf.release", "chf.release-retransmitted",
                 "chf.update-after-release", "pcf.update", "pcf.get-after-delete"):
        assert checks.get(f"{step}.status") is True, step
        assert checks.get(f"{step}.http2") is True, step
    assert checks["pcf.delete.status"] and checks["pcf.delete.http2"]
    assert all(checks.values())

    # Location headers name the created resources under this NF's SBI root.
    assert summary["pcfLocation"] == (
        f"{nf.sbi}/npcf-smpolicycontrol/v1/sm-policies/{summary['smPolicyId']}")
    assert summary["chfLocation"] == (
        f"{nf.sbi}/nchf-convergedcharging/v3/chargingdata/{summary['chargingDataRef']}")

    # One grant for the create and one per update, each > 0.
    grants = summary["grants"]
    assert len(grants) == 1 + UPDATES and all(g > 0 for g in grants)

    # The session AMBR free5gc decoded is the subscriber's plan speed.
    ambr = summary["sessAmbr"]
    assert _kbps(ambr["uplink"]) == speed["uplinkKbps"]
    assert _kbps(ambr["downlink"]) == speed["downlinkKbps"]

    # 404 for an unknown chargingDataRef decoded as ProblemDetails with a cause.
    assert summary["unknownRef"]["status"] == 404 and summary["unknownRef"]["cause"]

    # Missing invocationSequenceNumber (free5gc drops 0) is refused as 3GPP demands.
    assert summary["probes"]["isnZero"]["status"] == 400
    assert summary["probes"]["isnZero"]["sentInvocationSequenceNumber"] is False

    # Money: exactly what the client reported as used is committed, nothing stays reserved.
    buckets = balance.json()["buckets"]
    assert sum(b["usedBytes"] for b in buckets) == summary["usedBytesTotal"] > 0
    assert sum(b["reservedBytes"] for b in buckets) == 0

    # Every answer survived decoding into free5gc's models and encoding again: no member
    # they do not know, no value their Go types cannot carry, no zero their omitempty drops.
    # ("wire" observations are header facts, reported in the summary, judged elsewhere.)
    lossy = [o for o in summary["observations"] if o["kind"] != "wire"]
    assert lossy == [], lossy

    assert bad_code == 1 and bad["ok"] is False
    assert any(f.startswith("pcf.create.status") for f in bad["failures"]), bad["failures"]
