"""The load generator: it builds, its requests conform to the 3GPP documents, it refuses
to aim anywhere but the loopback address, and it drives a real NF over HTTP/2."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import orchestrate
from tests import conformance as c

pytestmark = pytest.mark.skipif(shutil.which("go") is None
                                and not Path("/usr/local/go/bin/go").is_file(),
                                reason="Go is not installed")


@pytest.fixture(scope="module")
def loadgen() -> Path:
    orchestrate.build_loadgen()
    assert orchestrate.LOADGEN_BIN.is_file()
    return orchestrate.LOADGEN_BIN


def test_one_session_of_requests_conforms_to_3gpp(loadgen: Path) -> None:
    out = subprocess.run([str(loadgen), "-print-bodies"], capture_output=True, text=True,
                         check=True, timeout=30)
    reqs = json.loads(out.stdout)
    assert [r["op"] for r in reqs] == ["pcf_create", "chf_create", "chf_update",
                                       "chf_release", "pcf_delete"]
    for r in reqs:
        doc = c.PCF if r["op"].startswith("pcf") else c.CHF
        c.validate_request(doc, r["method"], r["path"], r["body"])
    upd = reqs[2]["body"]["multipleUnitUsage"][0]
    assert upd["usedUnitContainer"][0]["totalVolume"] == 1 << 20
    assert "requestedUnit" not in reqs[3]["body"]["multipleUnitUsage"][0]


@pytest.mark.parametrize("target", ["http://10.1.2.3:8000", "https://127.0.0.1:8000"])
def test_refuses_targets_other_than_loopback_h2c(loadgen: Path, target: str) -> None:
    res = subprocess.run([str(loadgen), "-mode", "healthz", "-target", target,
                          "-duration", "1s", "-warmup", "0s"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 2
    assert "loopback" in res.stderr or "h2c" in res.stderr
