"""What the Diameter process spends in Python per Gy CCR-U outside the database: the bytes
of a CCR-U read off a stream, through the connection's base protocol, the Gy handler
(``parse_ccr``, ``to_sbi``, the CHF call, ``cca_avps``, the answer) and back onto the
stream with its metrics, with the CHF replaced by one that answers at once.

    PYTHONPATH=. .venv/bin/python -m bench.diameter_path [--count 5000] [--runs 5]
    PYTHONPATH=. .venv/bin/python -m bench.diameter_path --profile

Each run feeds ``count`` CCR-Us (End-to-End ids all different, so none is a duplicate)
through one connection and prints the process's CPU time per CCR in microseconds (median
of the runs). ``--profile`` prints the cProfile of one run instead. The CHF, the ledger
and the database are left out: this is the part the SBI side does in Rust (HTTP/2
framing) or does not do at all (the translation to the SBI's model).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
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


async def _run(count: int, settings: Settings, metrics: Metrics) -> float:
    clock = SystemClock()
    gy = GyHandler(_Chf(), settings, clock)  # type: ignore[arg-type]
    allowed = base.allowed_from({n: (d.realms, d.peers)
                                 for n, d in settings.diameter.networks.items()})
    listener = Listener(settings.diameter, allowed, [gy], clock, metrics=metrics)
    reader = asyncio.StreamReader()
    writer = _Writer()
    conn = _Conn(listener, reader, writer)  # type: ignore[arg-type]
    conn.core.peer = base.PeerInfo(PEER, "epc.mnc001.mcc001.3gppnetwork.org", "northwind",
                                   frozenset({base.APP_GY}))
    conn.core.state = base.State.OPEN
    data = _messages(count)
    start = time.process_time()
    async with asyncio.TaskGroup() as tg:
        for d in data:
            reader.feed_data(d)
            await conn._read_one(tg)
            await asyncio.sleep(0)  # the handler's task runs to its end
    spent = time.process_time() - start
    assert codec.result_code(codec.decode(writer.last)) == codec.SUCCESS, "no CCA 2001"
    return spent / count * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=5_000, help="CCRs per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one run")
    args = ap.parse_args()
    settings = _settings()
    metrics = Metrics()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(_run(args.count, settings, metrics))
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        return
    runs = [asyncio.run(_run(args.count, settings, metrics)) for _ in range(args.runs)]
    print(f"Gy CCR-U through the Diameter path (no database): "
          f"{statistics.median(runs):.1f} us/CCR (runs: "
          f"{', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
