"""The real NF (``nf serve``) with its Diameter listener on an ephemeral port."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nf.store.embedded import free_port
from tests.diameter.client import PGW, REALM
from tests.e2e.nfproc import NfProcess, running_nf

ORIGIN_HOST = "ocs.mvno.test"
ORIGIN_REALM = "mvno.test"


BLUEPEAK_PGW = "pgw1.bluepeak.test"
BLUEPEAK_REALM = "epc.mnc002.mcc001.3gppnetwork.org"


def diameter_env(port: int, *, peers: tuple[str, ...] = (PGW,),
                 realms: tuple[str, ...] = (REALM,), bluepeak: bool = False,
                 **extra: str) -> dict[str, str]:
    """``bluepeak``: a second host network with a PGW of its own (its configuration must
    have a network ``bluepeak``)."""
    networks = {"northwind": {"realms": list(realms), "peers": list(peers)}}
    if bluepeak:
        networks["bluepeak"] = {"realms": [BLUEPEAK_REALM], "peers": [BLUEPEAK_PGW]}
    env = {
        "NF_DIAMETER__ENABLED": "true",
        "NF_DIAMETER__PORT": str(port),
        "NF_DIAMETER__ORIGIN_HOST": ORIGIN_HOST,
        "NF_DIAMETER__ORIGIN_REALM": ORIGIN_REALM,
        "NF_DIAMETER__NETWORKS": json.dumps(networks),
    }
    env.update(extra)
    return env


def wait_port(port: int, nf: NfProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if nf.proc.poll() is not None:
            raise RuntimeError(f"nf exited:\n{nf.log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"diameter port {port} not open:\n{nf.log.read_text()}")


@contextmanager
def diameter_nf(uri: str, database: str, tmp: Path, port: int | None = None,
                bluepeak: bool = False, **kw: object) -> Iterator[tuple[NfProcess, int]]:
    port = port or free_port()
    env = diameter_env(port, bluepeak=bluepeak)
    env.update(kw.pop("extra_env", {}) or {})  # type: ignore[arg-type]
    with running_nf(uri, database, tmp, extra_env=env, **kw) as nf:  # type: ignore[arg-type]
        wait_port(port, nf)
        yield nf, port
