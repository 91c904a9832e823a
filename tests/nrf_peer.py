"""free5GC's NRF (``github.com/free5gc/nrf``) as a real peer for tests: built once per
machine from the Go module proxy into ``~/.cache/mvno-nf/nrf-<version>/nrf`` and run
against the embedded database.

The build (about a minute cold) runs in a scratch Go module, under a lock file so that two
test runs never build at once:

1. ``go.mod`` requiring ``github.com/free5gc/nrf`` at ``NRF_VERSION`` and a ``tools.go``
   that blank-imports it; ``go mod tidy``.
2. ``go get github.com/ugorji/go/codec@v1.2.12``: the codec version the module pins does
   not link with current Go ("invalid reference to runtime.typedmemclr").
3. ``go build -o nrf github.com/free5gc/nrf``.

``python -m tests.nrf_peer`` builds it and prints the path (warming the cache by hand).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

NRF_VERSION = "v1.3.0"
CODEC_VERSION = "v1.2.12"
BUILD_TIMEOUT_S = 1200


class NrfUnavailable(Exception):
    """Go is missing: the NRF cannot be built here."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mvno-nf"


def _go_env(gopath_cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"})
    env.setdefault("GOPATH", str(gopath_cache))
    return env


def build_nrf() -> Path:
    """The NRF binary, built on first use. ``NrfUnavailable`` without Go; ``RuntimeError``
    (with the build log) when the build fails."""
    go = shutil.which("go")
    if go is None:
        raise NrfUnavailable("`go` is not installed: cannot build free5GC's NRF")
    root = cache_root() / f"nrf-{NRF_VERSION}"
    binary = root / "nrf"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        src = root / "src"
        src.mkdir(exist_ok=True)
        (src / "go.mod").write_text(
            "module nrfbuild\n\ngo 1.21\n\n"
            f"require github.com/free5gc/nrf {NRF_VERSION}\n", encoding="utf-8")
        (src / "tools.go").write_text(
            "//go:build tools\n\npackage tools\n\nimport _ \"github.com/free5gc/nrf\"\n",
            encoding="utf-8")
        env = _go_env(cache_root() / "gopath")
        log = root / "build.log"
        steps = [[go, "mod", "tidy"],
                 [go, "get", f"github.com/ugorji/go/codec@{CODEC_VERSION}"],
                 [go, "build", "-trimpath", "-o", str(binary) + ".tmp",
                  "github.com/free5gc/nrf"]]
        with open(log, "w", encoding="utf-8") as out:
            for step in steps:
                out.write(f"$ {' '.join(step)}\n")
                out.flush()
                r = subprocess.run(step, cwd=src, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
                if r.returncode != 0:
                    raise RuntimeError(f"building free5GC's NRF failed at {step[1:3]}; "
                                       f"log:\n{log.read_text(encoding='utf-8')[-4000:]}")
        os.replace(str(binary) + ".tmp", binary)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NrfProcess:
    """One running free5GC NRF (h2c on ``127.0.0.1:port``); ``start``/``stop`` may be called
    again to simulate an outage (same port, same database: its state survives only in the
    database, which a test may drop to simulate a lost registration)."""

    def __init__(self, binary: Path, workdir: Path, mongodb_uri: str, db_name: str,
                 plmn: tuple[str, str] = ("001", "01")) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "nrfcfg.yaml"
        self.config.write_text(
            "info:\n  version: 1.0.0\n  description: test NRF\n"
            "configuration:\n"
            f"  MongoDBName: {db_name}\n"
            f"  MongoDBUrl: {mongodb_uri}\n"
            "  sbi:\n    scheme: http\n    registerIPv4: 127.0.0.1\n"
            f"    bindingIPv4: 127.0.0.1\n    port: {self.port}\n"
            f"  DefaultPlmnId:\n    mcc: \"{plmn[0]}\"\n    mnc: \"{plmn[1]}\"\n"
            "  serviceNameList:\n    - nnrf-nfm\n    - nnrf-disc\n"
            "logger:\n  NRF:\n    debugLevel: info\n    ReportCaller: false\n",
            encoding="utf-8")

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        log = open(self.workdir / "nrf.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([str(self.binary), "--nrfcfg", str(self.config)],
                                     cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        with httpx.Client(http1=False, http2=True, timeout=1.0) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the NRF exited: {self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    r = c.get(f"{self.uri}/nnrf-disc/v1/nf-instances",
                              params={"target-nf-type": "CHF", "requester-nf-type": "SMF"})
                    if r.status_code < 500:
                        return
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the NRF did not answer within {timeout_s}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def log_tail(self) -> str:
        p = self.workdir / "nrf.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def get(self, path: str, **params: str) -> httpx.Response:
        """GET on a new connection: h2c first; its h2c server sometimes ends a new
        connection (GOAWAY, no stream processed) before answering, so after 3 such
        refusals HTTP/1.1, which it always answers."""
        for _ in range(3):
            try:
                with httpx.Client(http1=False, http2=True, timeout=10.0) as c:
                    return c.get(f"{self.uri}{path}", params=params)
            except (httpx.RemoteProtocolError, httpx.LocalProtocolError):
                time.sleep(0.05)
        with httpx.Client(timeout=10.0) as c:
            return c.get(f"{self.uri}{path}", params=params)

    def discover(self, nf_type: str) -> httpx.Response:
        return self.get("/nnrf-disc/v1/nf-instances", **{"target-nf-type": nf_type,
                                                           "requester-nf-type": "SMF"})

    def profile(self, instance_id: str) -> httpx.Response:
        return self.get(f"/nnrf-nfm/v1/nf-instances/{instance_id}")


@contextlib.contextmanager
def running_nrf(workdir: Path, mongodb_uri: str, db_name: str) -> Iterator[NrfProcess]:
    nrf = NrfProcess(build_nrf(), workdir, mongodb_uri, db_name)
    nrf.start()
    try:
        yield nrf
    finally:
        nrf.stop()


if __name__ == "__main__":
    print(build_nrf())
