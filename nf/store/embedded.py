"""Start the embedded database (SecantusDB) as a separate process.

SecantusDB speaks the MongoDB wire protocol over WiredTiger. It is GPL-2.0 and is only
ever run as a program, never imported. The Rust server ``secantusd-rs`` is preferred; it is
built once with cargo into a per-user cache (``nf db build``). Without it, the Python
server ``secantusd-py`` (package ``secantusdb``) is used: correct, but slow.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nf.proc import die_with_parent

RUST_CRATE = "secantus-mdb"
RUST_VERSION = "0.5.3-beta.196"
RUST_TOOLCHAIN = "1.98"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mvno-nf" / f"secantus-rs-{RUST_VERSION}"


def rust_binary() -> Path | None:
    explicit = os.environ.get("NF_SECANTUS_BIN")
    if explicit:
        p = Path(explicit)
        return p if p.is_file() and os.access(p, os.X_OK) else None
    p = cache_root() / "bin" / "secantusd-rs"
    return p if p.is_file() and os.access(p, os.X_OK) else None


def python_binary() -> Path | None:
    here = Path(sys.executable).parent / "secantusd-py"
    if here.is_file():
        return here
    found = shutil.which("secantusd-py")
    return Path(found) if found else None


def build_log() -> Path:
    return cache_root().parent / f"build-secantus-rs-{RUST_VERSION}.log"


def build_rust(log: Path | None = None) -> tuple[bool, str]:
    """Build ``secantusd-rs`` once with cargo. Returns (ok, message); never raises.

    The toolchain and cargo output go to ``log`` (default: ``build_log()``).
    """
    if rust_binary() is not None:
        return True, f"secantusd-rs already built at {rust_binary()}"
    cargo = shutil.which("cargo")
    if cargo is None:
        return False, "cargo not found; the Python server secantusd-py will be used"
    log = log or build_log()
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            rustup = shutil.which("rustup")
            if rustup:
                subprocess.run(
                    [rustup, "toolchain", "install", RUST_TOOLCHAIN, "--profile", "minimal"],
                    check=True, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                )
            cmd = [cargo]
            if rustup:
                cmd.append(f"+{RUST_TOOLCHAIN}")
            cmd += ["install", RUST_CRATE, "--version", f"={RUST_VERSION}", "--locked",
                    "--root", str(cache_root())]
            res = subprocess.run(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        return False, f"building secantusd-rs failed: {e} (output in {log})"
    if res.returncode != 0 or rust_binary() is None:
        return False, (f"cargo install {RUST_CRATE} failed (exit {res.returncode}); "
                       f"output in {log}; the Python server secantusd-py will be used")
    return True, f"built secantusd-rs into {cache_root()} (output in {log})"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedDb:
    """A running SecantusDB process."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    kind: str  # "rust" or "python"
    temp_dir: str | None = None  # removed on stop

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes],
                    timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"database server exited with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"database server did not listen on {host}:{port} in {timeout_s}s")


def durable_default() -> bool:
    """Durable unless ``NF_DB_SYNC_ON_COMMIT=0`` (benchmarks measuring the cost only)."""
    return os.environ.get("NF_DB_SYNC_ON_COMMIT", "1").strip().lower() not in (
        "0", "false", "no", "off")


def start(storage: Path | None, *, host: str = "127.0.0.1", port: int = 0,
          prefer: str = "auto", log: Path | None = None,
          startup_timeout_s: float = 60.0, cache_size: str = "1G",
          durable: bool | None = None) -> EmbeddedDb:
    """Start SecantusDB on ``host:port`` (0 picks a free port) storing under ``storage``.

    ``storage=None`` keeps data in a temporary directory dropped at exit.
    ``prefer``: "auto" (Rust if built, else Python), "rust" or "python".
    ``cache_size``: the Rust server's storage cache (its memory beyond that is small).
    ``durable`` (default: yes, see ``durable_default``): the server syncs its log on
    every commit (``--sync-on-commit``), so a write it acknowledged survives a SIGKILL or a
    power cut; without it the last acknowledged writes can be lost, ``j: true`` or not.
    """
    if durable is None:
        durable = durable_default()
    if port == 0:
        port = free_port(host)
    rust = rust_binary() if prefer in ("auto", "rust") else None
    if prefer == "rust" and rust is None:
        raise RuntimeError("secantusd-rs is not built: run `nf db build`")
    if rust is not None:
        binary, kind = rust, "rust"
    else:
        py = python_binary()
        if py is None:
            raise RuntimeError(
                "no SecantusDB server found: install the 'embedded' extra (secantusdb) "
                "or run `nf db build`"
            )
        binary, kind = py, "python"
    tmp: str | None = None
    if storage is None:
        tmp = tempfile.mkdtemp(prefix="nf-db-")
        storage = Path(tmp)
    storage.mkdir(parents=True, exist_ok=True)
    cmd = [str(binary), "--host", host, "--port", str(port), "--storage-path", str(storage),
           "--log-level", "WARNING"]
    if kind == "rust":
        cmd += ["--cache-size", cache_size, "--log-file-max", "32MB"]
    if durable:
        cmd.append("--sync-on-commit")  # both servers take it
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    # Its own session: a terminal's Ctrl-C reaches the NF first, which drains, then stops the
    # database. It dies with its parent, never left behind.
    proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=die_with_parent)
    if log:
        out.close()  # type: ignore[union-attr]
    db = EmbeddedDb(proc, host, port, kind, tmp)
    try:
        _wait_listening(host, port, proc, startup_timeout_s)
    except BaseException:
        db.stop()
        raise
    return db
