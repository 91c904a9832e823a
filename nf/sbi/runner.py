"""Running the two servers (SBI and OAM) under Granian (default) or Hypercorn.

``serve`` is a small supervisor: it starts one child process per port (each in its own
session, so a terminal's Ctrl-C reaches them once, through the supervisor), forwards the
first SIGTERM / SIGINT to them (a repeated one is only logged), and waits for them to drain
within ``server.shutdown_grace_s``. Past that and ``STOP_MARGIN_S`` more, it SIGKILLs what
is left (each child's whole process group, workers included), says so, and exits 1: a stop
always ends. Under Granian each worker process drains and stops by itself
(``nf.sbi.drain``); the exit code is 0 only if no process had to be killed.
Each child runs the chosen server with the app factory in ``nf.sbi.entry``; HTTP/2 is h2c
with prior knowledge in cleartext and ALPN ``h2`` over TLS (TS 29.500).

A host network with its own SBI listener (``networks[].sbi_port``, mTLS with its own client
CA bundle) gets one more child: the same SBI app, told through
``NF_SERVER__LISTENER_NETWORK`` which network it serves, with ``sbi_workers`` (default
``server.workers``) workers of its own. With ``diameter.enabled`` one more child holds the
Diameter listener (``nf.diameter_process``), and every child is told the Unix socket on
which the others wake it when they enqueue a push for it (``nf.notify.wake``).

Children die with the supervisor (``PR_SET_PDEATHSIG`` on Linux): no orphan servers.

The servers bind with ``SO_REUSEPORT`` so that several SBI workers share one port. That
would also let a second NF on the same host join the port and split the SMFs' traffic;
so before starting anything the supervisor binds each address itself *without*
``SO_REUSEPORT`` and refuses to start (exit code 3, naming the port) if that fails.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nf import logs
from nf.config import ServerSettings, Settings
from nf.proc import UNCLEAN_STOP_SIGNAL, die_with_parent
from nf.runtime import Role
from nf.settings.server import Listener, sbi_listener

log = logging.getLogger("nf.runner")

# Headroom above the in-flight bound so that the app, not the server, answers 503.
_BACKPRESSURE_HEADROOM = 64


def _log_config(level: str) -> dict[str, Any]:
    """Server loggers write the same JSON lines as the NF."""
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "nf.logs.JsonFormatter"}},
        "handlers": {"console": handler, "access": handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "WARNING",
                               "propagate": False},
            "hypercorn.error": {"handlers": ["console"], "level": level,
                                "propagate": False},
        },
    }


def _granian(role: Role, srv: ServerSettings, host: str, port: int, workers: int,
             client_ca: Path | None, log_level: str) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP2Settings
    from granian.log import LogLevels

    server = Granian(
        f"nf.sbi.entry:granian_{role}_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        # Both ports take HTTP/1.1 and HTTP/2 (h2c prior knowledge, or ALPN under TLS);
        # with ``server.sbi_http1`` off the SBI app answers HTTP/1.1 with 505, which says
        # how to connect, instead of the reset an HTTP/2-only listener would give.
        http=HTTPModes.auto,
        workers=workers,
        loop=Loops(srv.granian_loop),
        http2_settings=HTTP2Settings(
            max_concurrent_streams=srv.h2_max_concurrent_streams,
            keep_alive_interval=int(srv.h2_keep_alive_interval_s * 1000),
        ),
        backpressure=srv.max_inflight_requests + _BACKPRESSURE_HEADROOM,
        ssl_cert=srv.tls_cert_file,
        ssl_key=srv.tls_key_file,
        # mTLS: the handshake fails without a client certificate signed by this CA.
        # SBI only (OAM's probes and Prometheus carry no certificates).
        ssl_ca=client_ca,
        ssl_client_verify=client_ca is not None,
        # No kill timeout: a worker stops by itself within the grace (``nf.sbi.drain``),
        # and one that hangs is killed by ``serve`` (with a truthful exit code). Granian's
        # own kill also fires at a worker that has just exited by itself (its join and
        # its watcher thread race), logging a kill that did not happen.
        workers_kill_timeout=None,
        respawn_failed_workers=True,
        log_level=LogLevels(log_level.lower()),
        log_dictconfig=_log_config(log_level),
        log_access=False,
    )
    unclean: list[int] = []  # a worker's report that it cut requests or could not flush
    signal.signal(UNCLEAN_STOP_SIGNAL, lambda _s, _f: unclean.append(1))
    server.serve()
    # Granian exits 0 whatever its workers' exit codes.
    if unclean:
        logs.log(log, logging.ERROR, "a worker did not stop cleanly", role=role,
                 workers=len(unclean))
        raise SystemExit(1)


def _hypercorn(role: Role, srv: ServerSettings, host: str, port: int, workers: int,
               client_ca: Path | None, log_level: str) -> None:
    from hypercorn.config import Config
    from hypercorn.run import run

    cfg = Config()
    cfg.application_path = f"nf.sbi.entry:{role}_app()"
    cfg.bind = [f"{host}:{port}"]
    cfg.workers = workers
    # SMFs keep connections for hours: never close one after N requests, nor soon when idle.
    cfg.keep_alive_max_requests = 2**62
    cfg.keep_alive_timeout = srv.idle_timeout_s or float(2**31)
    cfg.h2_max_concurrent_streams = srv.h2_max_concurrent_streams
    cfg.graceful_timeout = srv.shutdown_grace_s
    # The app bounds its own start (``mongodb_startup_timeout_s``); Hypercorn's 60 s
    # default would kill a process still waiting for a large database.
    cfg.startup_timeout = 86_400
    cfg.accesslog = None
    cfg.logconfig_dict = _log_config(log_level)
    if srv.tls_cert_file and srv.tls_key_file:
        cfg.certfile = str(srv.tls_cert_file)
        cfg.keyfile = str(srv.tls_key_file)
        # ``http/1.1`` is offered on the SBI too, so that an HTTP/1.1-only client gets the
        # app's 505 explanation rather than a failed handshake (``server.sbi_http1``).
        cfg.alpn_protocols = ["h2", "http/1.1"]
        if client_ca is not None:  # mTLS
            import ssl

            cfg.ca_certs = str(client_ca)
            cfg.verify_mode = ssl.CERT_REQUIRED
    run(cfg)


def run_child(role: Role) -> None:
    """Run one server in this process until it is told to stop."""
    settings = Settings.load()
    logs.setup(settings.log_level)
    srv = settings.server
    run = _granian if srv.server == "granian" else _hypercorn
    run(role, srv, *listener(settings, role), settings.log_level)


def listener(settings: Settings, role: Role) -> Listener:
    """The listener of the server of ``role`` in this process; for ``sbi`` with
    ``server.listener_network`` set, that network's own listener."""
    srv = settings.server
    if role == "oam":
        # No client certificates: OAM's probes and Prometheus carry none.
        return Listener(srv.oam_host, srv.oam_port, 1, None)
    net = settings.network(srv.listener_network) if srv.listener_network else None
    return sbi_listener(settings.server, net)


def prepare_metrics_dir(env: dict[str, str]) -> tempfile.TemporaryDirectory[str] | None:
    """Point the children at an empty multi-process metrics directory.

    A directory given in ``PROMETHEUS_MULTIPROC_DIR`` is emptied of a previous run's files
    (they would be summed in); otherwise a temporary one is made and returned for cleanup.
    """
    given = env.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        d = Path(given)
        d.mkdir(parents=True, exist_ok=True)
        for f in d.glob("*.db"):
            f.unlink(missing_ok=True)
        return None
    tmp = tempfile.TemporaryDirectory(prefix="nf-metrics-")
    env["PROMETHEUS_MULTIPROC_DIR"] = tmp.name
    return tmp


EXIT_PORT_IN_USE = 3
# After ``shutdown_grace_s``, how long the supervisor still waits before it kills the servers
# (room for their last steps: a worker's exit, its server process's own).
STOP_MARGIN_S = 5.0


class PortInUse(Exception):
    """An address the NF must own is already bound by someone else."""


def claim_check(what: str, host: str, port: int, setting: str | None = None) -> None:
    """Raise ``PortInUse`` unless ``host:port`` can be bound exclusively right now.

    The probe socket has ``SO_REUSEADDR`` (connections of a previous run lingering in
    TIME_WAIT do not block a restart) but not ``SO_REUSEPORT``: any listener, including
    another NF's servers, makes the bind fail.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise PortInUse(f"{what} address {host}:{port} cannot be resolved: {e}") from None
    for family, stype, proto, _name, addr in infos:
        with socket.socket(family, stype, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError as e:
                why = "is already in use" if e.errno == errno.EADDRINUSE else \
                    f"cannot be bound ({e.strerror})"
                setting = setting or f"server.{what.lower()}_port"
                raise PortInUse(f"{what} port {port} on {host} {why}; is another NF "
                                f"running? Set another with {setting}") from None


# The module a child of ``serve`` runs (``python -m <module> <role>``); by default this one.
# The Diameter process is built by its own module, which sits above the transports.
_CHILD_MODULE = {"diameter": "nf.diameter_process"}


def _wake_socket(settings: Settings, env: dict[str, str]
                 ) -> tempfile.TemporaryDirectory[str] | None:
    """Where the other processes wake the Diameter process when they enqueue a push
    (``nf.notify.wake``): ``diameter.wake_socket`` if given, else a socket in a directory
    of our own (mode 0700), returned for cleanup. Set in ``env`` for every child."""
    if settings.diameter.wake_socket is not None:
        env["NF_DIAMETER__WAKE_SOCKET"] = str(settings.diameter.wake_socket)
        return None
    try:
        tmp = tempfile.TemporaryDirectory(prefix="nf-wake-")
    except OSError as e:  # no writable temporary directory: the outbox poll alone
        logs.log(log, logging.WARNING, "no Diameter push wake socket", error=str(e)[:200])
        return None
    env["NF_DIAMETER__WAKE_SOCKET"] = str(Path(tmp.name) / "diameter.sock")
    return tmp


def _tell(children: list[subprocess.Popen[bytes]], signum: int) -> None:
    for c in children:
        if c.poll() is None:
            c.send_signal(signum)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``child`` and every process of its group (a server's worker processes; each
    child leads a group of its own), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def serve(settings: Settings, env: dict[str, str] | None = None) -> int:
    """Start the SBI and OAM servers as child processes; return when both have ended.

    Exit code 0 after a requested stop in which both servers drained in time; 1 if a server
    died on its own or had to be killed; ``EXIT_PORT_IN_USE`` (3) if the SBI or OAM address
    is taken (nothing is started then).
    """
    logs.setup(settings.log_level)
    srv = settings.server
    from nf.errors import ConfigError
    from nf.security.apikeys import KeyRing

    try:
        KeyRing.from_settings(settings.api_keys)  # a missing key file stops us here
        if srv.listener_network is not None:
            raise ConfigError("server.listener_network is set by nf serve for the "
                              "processes of a host network's own listener; give the "
                              "network sbi_port instead")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        claim_check("SBI", srv.sbi_host, srv.sbi_port)
        claim_check("OAM", srv.oam_host, srv.oam_port)
        for net in settings.listener_networks():
            own = sbi_listener(settings.server, net)
            claim_check(f"host network {net.id}'s SBI", own.host, own.port,
                        f"networks[{net.id}].sbi_port")
        if settings.diameter.enabled and settings.diameter.port:
            claim_check("Diameter", settings.diameter.host, settings.diameter.port,
                        "diameter.port")
    except PortInUse as e:
        logs.log(log, logging.ERROR, "not starting", reason=str(e))
        print(f"error: {e}", file=sys.stderr)
        return EXIT_PORT_IN_USE
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("NF_SERVER__READYZ_CHECKS_SBI", "true")
    metrics_dir = prepare_metrics_dir(child_env)
    wake_dir = _wake_socket(settings, child_env) if settings.diameter.enabled else None
    # One child per listener: the shared SBI port, OAM, and each host network's own.
    envs = [("sbi", child_env), ("oam", child_env)]
    for net in settings.listener_networks():
        envs.append(("sbi", {**child_env, "NF_SERVER__LISTENER_NETWORK": net.id}))
        own = sbi_listener(settings.server, net)
        logs.log(log, logging.INFO, "host network listener", network=net.id,
                 host=own.host, port=own.port, workers=own.workers)
    if settings.diameter.enabled:  # one process holds every Diameter connection
        envs.append(("diameter", child_env))
    children = [
        subprocess.Popen([sys.executable, "-m", _CHILD_MODULE.get(role, "nf.sbi.runner"), role],
                         env=env_,
                         start_new_session=True, preexec_fn=die_with_parent)
        for role, env_ in envs
    ]
    # The handler only records the signal: forwarding, logging and waiting happen in the
    # loop below, so a signal arriving at any moment (a second SIGTERM, Ctrl-C after
    # SIGTERM) never re-enters any of it.
    received: list[int] = []

    def _record(signum: int, _frame: object) -> None:
        received.append(signum)

    old = {s: signal.signal(s, _record) for s in (signal.SIGTERM, signal.SIGINT)}
    grace_s = srv.shutdown_grace_s
    roles = [role for role, _ in envs]
    stopping = died = killed = False
    deadline = 0.0
    seen = 0
    try:
        while any(c.poll() is None for c in children):
            now = time.monotonic()
            arrived = received[seen:]
            seen += len(arrived)
            for signum in arrived:
                name = signal.Signals(signum).name
                if stopping:  # each server was told once; telling it again helps nothing
                    logs.log(log, logging.INFO, "already stopping", signal=name,
                             kill_in_s=round(max(0.0, deadline - now), 1))
                    continue
                logs.log(log, logging.INFO, "stopping", signal=name)
                stopping, deadline = True, now + grace_s + STOP_MARGIN_S
                _tell(children, signum)
            if not stopping and any(c.poll() is not None for c in children):
                # One server died: stop the other rather than run half an NF.
                died = True
                logs.log(log, logging.ERROR, "a server exited; stopping the others",
                         codes=[c.poll() for c in children])
                stopping, deadline = True, now + grace_s + STOP_MARGIN_S
                _tell(children, signal.SIGTERM)
            if stopping and now >= deadline:
                left = [{"role": r, "pid": c.pid} for r, c in zip(roles, children, strict=True)
                        if c.poll() is None]
                logs.log(log, logging.ERROR, "servers did not stop in time; killing them",
                         shutdown_grace_s=grace_s, waited_s=round(grace_s + STOP_MARGIN_S, 1),
                         servers=left)
                killed = True
                break
            time.sleep(0.05)
    finally:
        # Whatever happened: no server, nor any worker process of one, is left behind.
        for c in children:
            if c.poll() is None:
                killed = True
            _kill_group(c)
        for s, h in old.items():
            signal.signal(s, h)
        if metrics_dir is not None:
            metrics_dir.cleanup()
        if wake_dir is not None:
            wake_dir.cleanup()
    codes = [c.returncode for c in children]
    ok = stopping and not died and not killed and all(
        code in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes)
    logs.log(log, logging.INFO if ok else logging.ERROR, "stopped", codes=codes)
    return 0 if ok else 1


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else "sbi"
    if role not in ("sbi", "oam"):
        raise SystemExit(f"unknown role {role!r}")
    run_child("sbi" if role == "sbi" else "oam")
