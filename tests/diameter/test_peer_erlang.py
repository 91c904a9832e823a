"""Erlang/OTP's diameter application (Debian ``erlang-diameter``) as a strict Gy client of
the real NF: it decodes every CCA against a Gy dictionary (RFC 4006 from
``erlang-examples`` plus the 3GPP members of MSCC, ``erlang/gy3gpp.dia``) and reports any
error it finds (a missing or misplaced AVP, an M-bit AVP the grammar does not allow, a
bad value or length). A session to the cap and an unknown subscriber, all answered clean.

The dictionaries and the client are compiled once per machine into the cache."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nf.config import Settings
from nf.store.embedded import EmbeddedDb, free_port
from tests.debian import package
from tests.diameter.client import PGW, REALM
from tests.diameter.nfdia import diameter_env, wait_port
from tests.diameter.test_e2e_gy import CONFIG, IMSI, provision
from tests.e2e.nfproc import running_nf

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent / "erlang"
OTP_DICTS = Path("/usr/lib/erlang/lib/diameter-2.2.7/examples/dict")
ERL_HOST = "pgw2.northwind.test"


def build() -> Path:
    """Compile RFC 4005/4006 (inheriting OTP's RFC 6733 base), the Gy dictionary and the
    client into a cache directory keyed by their sources."""
    package("erlang-diameter", Path("/usr/bin/erl"))
    package("erlang-examples", OTP_DICTS / "rfc4006_cc.dia")
    package("erlang-dev", Path("/usr/lib/erlang/lib/diameter-2.2.7/include/diameter.hrl"))
    if shutil.which("diameterc") is None or shutil.which("erlc") is None:
        pytest.skip("diameterc / erlc missing (Debian erlang-diameter, erlang-dev)")
    sources = [OTP_DICTS / "rfc4005_nas.dia", OTP_DICTS / "rfc4006_cc.dia",
               HERE / "gy3gpp.dia", HERE / "gy_client.erl"]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    out = cache / "mvno-nf" / f"erlang-gy-{key}"
    if (out / "gy_client.beam").exists():
        return out
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for p in sources[:2]:  # OTP's examples inherit "common"; the base is RFC 6733's
        (tmp / p.name).write_text(p.read_text().replace(
            "@inherits common", "@inherits diameter_gen_base_rfc6733"))
    shutil.copy(sources[2], tmp)
    shutil.copy(sources[3], tmp)
    for name in ("rfc4005_nas", "rfc4006_cc", "gy3gpp"):
        subprocess.run(["diameterc", "-i", ".", f"{name}.dia"], cwd=tmp, check=True,
                       capture_output=True, timeout=120)
        subprocess.run(["erlc", "-I", ".", f"{name}.erl"], cwd=tmp, check=True,
                       capture_output=True, timeout=120)
    subprocess.run(["erlc", "-I", ".", "gy_client.erl"], cwd=tmp, check=True,
                   capture_output=True, timeout=120)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def test_strict_erlang_gy_client_to_the_cap(db_server: EmbeddedDb, settings: Settings,
                                           tmp_path: Path) -> None:
    beams = build()
    port = free_port()
    env = {**diameter_env(port, peers=(PGW, ERL_HOST)), "NF_CONFIG": str(CONFIG)}
    with running_nf(db_server.uri, settings.mongodb_database, tmp_path, extra_env=env) as nf:
        wait_port(port, nf)
        provision(nf.oam)
        run = subprocess.run(
            ["erl", "-noshell", "-pa", str(beams), "-eval",
             f'gy_client:main(["{port}", "{IMSI}", "{REALM}", "{ERL_HOST}"])'],
            capture_output=True, timeout=120)
    out = run.stdout.decode(errors="replace")
    assert run.returncode == 0, out + run.stderr.decode(errors="replace")
    lines = [ln for ln in out.splitlines() if re.match(r"^\w+ (rc|failed)=", ln)]
    assert [ln.split()[0] for ln in lines] == [
        "initial", "update", "update", "update", "terminate", "unknown"], out
    for ln in lines:
        assert "errors=[]" in ln, ln  # nothing the strict decoder could fault
    rcs = [int(re.search(r"rc=(\d+)", ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    assert rcs == [2001, 2001, 2001, 2001, 2001, 5030], out
    # Per MSCC: grants until the cap, the last one with Final-Unit-Indication, then 4012.
    assert "'Granted-Service-Unit'" in lines[0] and "'Volume-Quota-Threshold' => [209715]" \
        in lines[0], lines[0]
    assert "'Final-Unit-Indication'" in lines[2], lines[2]
    assert "'Result-Code' => [4012]" in lines[3], lines[3]
