"""Run the real NF (``nf serve``) as a child process on ephemeral ports."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from nf.store.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
TEST_CONFIG = ROOT / "tests" / "data" / "nf-test.yaml"


@dataclass
class NfProcess:
    proc: subprocess.Popen[bytes]
    sbi: str
    oam: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill_group(self) -> None:
        """SIGKILL every process of the NF at once (needs ``new_session=True``)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


@contextmanager
def running_nf(mongodb_uri: str, database: str, tmp: Path, *, server: str = "granian",
               extra_env: dict[str, str] | None = None, tls: tuple[Path, Path] | None = None,
               workers: int = 1, new_session: bool = False,
               own_group: bool = False, sbi_ssl: ssl.SSLContext | None = None
               ) -> Iterator[NfProcess]:
    """``own_group`` (or ``new_session``): the NF gets its own process group, which a
    test may SIGKILL whole (``os.killpg(nf.proc.pid, signal.SIGKILL)``) without touching
    the test runner. ``sbi_ssl``: the client TLS context for the readiness wait on the
    SBI (mTLS)."""
    sbi_port, oam_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({
        "NF_CONFIG": str(TEST_CONFIG),
        "NF_MONGODB_URI": mongodb_uri,
        "NF_MONGODB_DATABASE": database,
        "NF_SERVER__SBI_PORT": str(sbi_port),
        "NF_SERVER__OAM_PORT": str(oam_port),
        "NF_SERVER__SERVER": server,
        "NF_SERVER__WORKERS": str(workers),
        "NF_SERVER__SHUTDOWN_GRACE_S": "5",
    })
    scheme = "http"
    if tls is not None:
        env["NF_SERVER__TLS_CERT_FILE"] = str(tls[0])
        env["NF_SERVER__TLS_KEY_FILE"] = str(tls[1])
        scheme = "https"
    env.update(extra_env or {})
    log = tmp / f"nf-{sbi_port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nf.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=new_session or own_group)
    nf = NfProcess(proc, f"{scheme}://127.0.0.1:{sbi_port}", f"{scheme}://127.0.0.1:{oam_port}",
                   log)
    try:
        wait_ready(nf, tls, sbi_ssl=sbi_ssl)
        yield nf
    finally:
        nf.stop()


def wait_ready(nf: NfProcess, tls: tuple[Path, Path] | None, timeout_s: float = 60,
               sbi_ssl: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if nf.proc.poll() is not None:
            raise RuntimeError(f"nf exited with {nf.proc.returncode}:\n{nf.log.read_text()}")
        try:
            r = httpx.get(nf.oam + "/readyz", timeout=1, verify=False)
            last = r.text
            if r.status_code == 200:
                # The SBI is a separate server process: wait until it answers too.
                with httpx.Client(http1=False, http2=True, verify=sbi_ssl or False,
                                  timeout=1) as c:
                    if c.get(nf.sbi + "/healthz").status_code == 200:
                        return
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.1)
    raise RuntimeError(f"nf not ready in {timeout_s}s ({last}):\n{nf.log.read_text()}")
