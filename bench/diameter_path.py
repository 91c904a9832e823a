"""What the Diameter process spends in Python per Gy CCR-U outside the database: the bytes
of a CCR-U read off a stream, through the connection's base protocol, the Gy handler
(``parse_ccr``, ``to_sbi``, the CHF call, ``cca_avps``, the answer) and back onto the
stream with its metrics, with the CHF replaced by one that answers at once.

    PYTHONPATH=. .venv/bin/python -m bench.diameter_path [--count 5000] [--runs 5]
    PYTHONPATH=. .venv/bin/python -m bench.diameter_path --profile

Each run feeds ``count`` CCR-Us (End-to-End ids all different, so none is a duplicate)
through one connection and prints the process's CPU time per CCR in microseconds (median
of the runs). ``--batch N``: N CCRs arrive at once (a loaded connection); ``--socket``:
the answers go to a real socket, so the system calls of writing them count. ``--profile``
prints the cProfile of one run instead. The CHF, the ledger
and the database are left out: this is the part the SBI side does in Rust (HTTP/2
framing) or does not do at all (the translation to the SBI's model).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import socket
import statistics
import time
from typing import Any

from bench.diameter_codec import ANSWER_BODY, sample_ccr
from nf.clock import SystemClock
from nf.config import Settings
from nf.diameter import base, codec
from nf.diameter.gy import GyHandler
from nf.diameter.peer import Listener, _Conn
from nf.metrics import Metrics

PEER = "pgw1.northwind.example"


class _Chf:
    """A CHF that grants at once (the database's part is not measured here)."""

    async def create(self, req: Any, *, ref: str, interface: str
                     ) -> tuple[int, dict[str, Any], str]:
        return 201, ANSWER_BODY, ref

    async def update(self, ref: str, req: Any) -> tuple[int, dict[str, Any]]:
        return 200, ANSWER_BODY

    async def release(self, ref: str, req: Any) -> None:
        return None


class _Writer:
    def __init__(self) -> None:
        self.sent = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.sent += len(data)
        self.last = data

    def is_closing(self) -> bool:
        return False

    async def drain(self) -> None:
        return None

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 3868)


def _settings() -> Settings:
    nets = [{"id": f"net{i}", "name": f"Net {i}", "plmn_ids": [f"0010{i}"]}
            for i in range(2, 6)]
    nets.insert(2, {"id": "northwind", "name": "Northwind", "plmn_ids": ["00101"]})
    return Settings(networks=nets, diameter={
        "enabled": True, "origin_host": "ocs.mvno.example", "origin_realm": "mvno.example",
        "networks": {"northwind": {"realms": ["epc.mnc001.mcc001.3gppnetwork.org"],
                                   "peers": [PEER]}}})


def _messages(count: int) -> list[bytes]:
    one = sample_ccr()
    return [one[:16] + (1000 + i).to_bytes(4, "big") + one[20:] for i in range(count)]


async def _socket_writer() -> tuple[asyncio.StreamWriter, asyncio.Task[int]]:
    """A real stream writer over a socket pair (its writes are system calls), the other
    end read and thrown away by a task that returns the bytes it read."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    _r, writer = await asyncio.open_connection(sock=ours)
    loop = asyncio.get_running_loop()

    async def sink() -> int:
        got = 0
        while chunk := await loop.sock_recv(theirs, 1 << 20):
            got += len(chunk)
        theirs.close()
        return got

    return writer, asyncio.create_task(sink())


async def _run(count: int, settings: Settings, metrics: Metrics, batch: int = 1,
               real_socket: bool = False) -> float:
    clock = SystemClock()
    gy = GyHandler(_Chf(), settings, clock)  # type: ignore[arg-type]
    allowed = base.allowed_from({n: (d.realms, d.peers)
                                 for n, d in settings.diameter.networks.items()})
    listener = Listener(settings.diameter, allowed, [gy], clock, metrics=metrics)
    reader = asyncio.StreamReader()
    writer = _Writer()
    if real_socket:
        stream, sink = await _socket_writer()
    conn = _Conn(listener, reader, stream if real_socket else writer)  # type: ignore[arg-type]
    conn.core.peer = base.PeerInfo(PEER, "epc.mnc001.mcc001.3gppnetwork.org", "northwind",
                                   frozenset({base.APP_GY}))
    conn.core.state = base.State.OPEN
    data = _messages(count)
    start = time.process_time()
    async with asyncio.TaskGroup() as tg:
        for at in range(0, len(data), batch):
            # ``batch`` CCRs arrive at once (a loaded connection); they are read, then
            # their handlers run and answer in the same turns of the event loop.
            for d in data[at:at + batch]:
                reader.feed_data(d)
            for _ in data[at:at + batch]:
                await conn._read_one(tg)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
    spent = time.process_time() - start
    if real_socket:
        stream.close()
        assert await sink > 0
    else:
        assert codec.result_code(codec.decode(writer.last)) == codec.SUCCESS, "no CCA 2001"
    return spent / count * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=5_000, help="CCRs per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one run")
    ap.add_argument("--batch", type=int, default=1, help="CCRs arriving at once")
    ap.add_argument("--socket", action="store_true",
                    help="answers written to a real socket (system calls counted)")
    args = ap.parse_args()
    settings = _settings()
    metrics = Metrics()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(_run(args.count, settings, metrics, args.batch, args.socket))
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        return
    runs = [asyncio.run(_run(args.count, settings, metrics, args.batch, args.socket))
            for _ in range(args.runs)]
    print(f"Gy CCR-U through the Diameter path (no database, {args.batch} at once"
          f"{', real socket' if args.socket else ''}): "
          f"{statistics.median(runs):.1f} us/CCR (runs: "
          f"{', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
