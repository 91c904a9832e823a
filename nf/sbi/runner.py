"""Running the two servers (SBI and OAM) under Granian (default) or Hypercorn.

``serve`` is a small supervisor: it starts one child process per port, forwards SIGTERM /
SIGINT to them, and waits for them to drain. Each child runs the chosen server with the
app factory in ``nf.sbi.entry``; HTTP/2 is h2c with prior knowledge in cleartext and ALPN
``h2`` over TLS (TS 29.500).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

from nf.config import Settings
from nf.runtime import Role


def run_child(role: Role) -> None:
    """Run one server in this process until it is told to stop."""
    settings = Settings.load()
    srv = settings.server
    host, port = (srv.sbi_host, srv.sbi_port) if role == "sbi" else (srv.oam_host,
                                                                      srv.oam_port)
    workers = srv.workers if role == "sbi" else 1
    target = f"nf.sbi.entry:{role}_app"
    if srv.server == "granian":
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP2Settings

        Granian(
            target,
            factory=True,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            # SBI peers speak HTTP/2 only; OAM also takes HTTP/1.1 (curl, Prometheus).
            http=HTTPModes.http2 if role == "sbi" else HTTPModes.auto,
            workers=workers,
            http2_settings=HTTP2Settings(
                max_concurrent_streams=srv.h2_max_concurrent_streams,
                keep_alive_interval=30_000,
            ),
            ssl_cert=srv.tls_cert_file,
            ssl_key=srv.tls_key_file,
            workers_kill_timeout=int(srv.shutdown_grace_s) + 1,
            log_access=False,
        ).serve()
        return
    from hypercorn.config import Config
    from hypercorn.run import run

    cfg = Config()
    cfg.application_path = f"{target}()"
    cfg.bind = [f"{host}:{port}"]
    cfg.workers = workers
    # SMFs keep connections for hours: never close one after N requests.
    cfg.keep_alive_max_requests = 2**62
    cfg.h2_max_concurrent_streams = srv.h2_max_concurrent_streams
    cfg.graceful_timeout = srv.shutdown_grace_s
    cfg.accesslog = None
    if srv.tls_cert_file and srv.tls_key_file:
        cfg.certfile = str(srv.tls_cert_file)
        cfg.keyfile = str(srv.tls_key_file)
        cfg.alpn_protocols = ["h2"] if role == "sbi" else ["h2", "http/1.1"]
    run(cfg)


def serve(settings: Settings, env: dict[str, str] | None = None) -> int:
    """Start the SBI and OAM servers as child processes; return when both have ended."""
    child_env = dict(os.environ if env is None else env)
    metrics_dir = None
    if "PROMETHEUS_MULTIPROC_DIR" not in child_env:
        metrics_dir = tempfile.TemporaryDirectory(prefix="nf-metrics-")
        child_env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    children = [
        subprocess.Popen([sys.executable, "-m", "nf.sbi.runner", role], env=child_env)
        for role in ("sbi", "oam")
    ]
    stopping = False

    def _forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    old = {s: signal.signal(s, _forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            codes = [c.poll() for c in children]
            if all(code is not None for code in codes):
                break
            if any(code is not None for code in codes) and not stopping:
                # One server died: stop the other rather than run half an NF.
                _forward(signal.SIGTERM, None)
            time.sleep(0.1)
        deadline = time.monotonic() + settings.server.shutdown_grace_s + 5
        for c in children:
            try:
                c.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.kill()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if metrics_dir is not None:
            metrics_dir.cleanup()
    return 0 if stopping else max(c.returncode or 0 for c in children) or 1


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else "sbi"
    if role not in ("sbi", "oam"):
        raise SystemExit(f"unknown role {role!r}")
    run_child("sbi" if role == "sbi" else "oam")
