"""Run the real NF (``nf serve``) as a child process on ephemeral ports; the pieces
(environment, spawn, readiness, SIGKILL of the whole process tree) also serve the crash
tests' NF on fixed ports (``tests.crash.harness``)."""

from __future__ import annotations

import contextlib
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
        kill_tree(self.proc.pid)
        self.proc.wait(30)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: list[int] = []
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        frontier += kids
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and the group of every process below it (the
    servers run in their own sessions): the whole NF dies at once, as in a host crash.
    ``pid`` must lead a group of its own (``start_new_session``), not the test runner's."""
    with contextlib.suppress(ProcessLookupError):  # (already gone: only its tree is left)
        assert os.getpgid(pid) != os.getpgid(0), "the NF shares the test runner's group"
    pids = [pid, *descendants(pid)]
    groups = set()
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(p))
    for g in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(g, signal.SIGKILL)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def serve_env(mongodb_uri: str, database: str, sbi_port: int, oam_port: int,
              config: Path = TEST_CONFIG) -> dict[str, str]:
    """The environment of ``nf serve``: this process's without any ``NF_`` setting, plus
    the configuration file, database and ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    env.update({
        "NF_CONFIG": str(config),
        "NF_MONGODB_URI": mongodb_uri,
        "NF_MONGODB_DATABASE": database,
        "NF_SERVER__SBI_PORT": str(sbi_port),
        "NF_SERVER__OAM_PORT": str(oam_port),
        "NF_SERVER__SHUTDOWN_GRACE_S": "5",
    })
    return env


def spawn_serve(env: dict[str, str], log: Path, *, new_session: bool) -> subprocess.Popen[bytes]:
    """Start ``nf serve`` with its output in ``log`` (not waiting for it to be ready)."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "nf.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=new_session)


def not_ready(oam: str, sbi: str, sbi_ssl: ssl.SSLContext | None = None) -> str | None:
    """None once OAM's ``/readyz`` is 200 and the SBI (a process of its own) answers;
    else what was seen instead."""
    try:
        r = httpx.get(oam + "/readyz", timeout=1, verify=False)
        if r.status_code != 200:
            return r.text
        with httpx.Client(http1=False, http2=True, verify=sbi_ssl or False, timeout=1) as c:
            h = c.get(sbi + "/healthz")
        return None if h.status_code == 200 else f"SBI /healthz {h.status_code}"
    except httpx.HTTPError as e:
        return repr(e)


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
    env = serve_env(mongodb_uri, database, sbi_port, oam_port)
    env.update({"NF_SERVER__SERVER": server, "NF_SERVER__WORKERS": str(workers)})
    scheme = "http"
    if tls is not None:
        env["NF_SERVER__TLS_CERT_FILE"] = str(tls[0])
        env["NF_SERVER__TLS_KEY_FILE"] = str(tls[1])
        scheme = "https"
    env.update(extra_env or {})
    log = tmp / f"nf-{sbi_port}.log"
    proc = spawn_serve(env, log, new_session=new_session or own_group)
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
    last: str | None = ""
    while time.monotonic() < deadline:
        if nf.proc.poll() is not None:
            raise RuntimeError(f"nf exited with {nf.proc.returncode}:\n{nf.log.read_text()}")
        last = not_ready(nf.oam, nf.sbi, sbi_ssl)
        if last is None:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nf not ready in {timeout_s}s ({last}):\n{nf.log.read_text()}")
