"""Measure cap-to-throttle-notification latency: from the CHF update that crosses a
subscriber's data cap to the throttle ``SmPolicyNotification`` arriving at a real HTTP/2
SMF (``tests.peers.NotificationReceiver``, its own thread and event loop).

Not a test (speed targets belong in benchmarks): run it and read the numbers::

    .venv/bin/python -m tests.pcf.latency --crossings 200 [--out FILE]

It starts SecantusDB and the real ``nf serve`` (both ports) with the small test catalogue
(``t-unlimited``: 10 MiB at full speed, then 128 kbps), provisions subscribers through the
provisioning API, opens an SM policy and a charging session for each over HTTP/2, then
for each subscriber sends the one ``Nchf_ConvergedCharging`` update that uses up the cap.
Latency = arrival at the SMF (``time.monotonic`` in the receiver) minus the moment just
before the update was sent (same host, same monotonic clock). Crossings run one at a time
(unloaded latency) and then ``--concurrency`` at a time (under load).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from nf.store import embedded
from tests.e2e.nfproc import running_nf
from tests.peers import NotificationReceiver
from tests.smf_sim import PolicySim, SmfSim, Usage, httpx_transport

ROOT = Path(__file__).resolve().parents[2]
TEST_CATALOG = ROOT / "tests" / "ledger" / "catalog"
ADMIN = {"X-API-Key": "demo-admin-key"}
CAP = 10 * 1024 * 1024  # t-unlimited
ANSWER_S: list[float] = []  # the CHF update's own response time, for comparison
METRICS: list[str] = []


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


async def _prepare(client: httpx.AsyncClient, sbi: str, oam: str, smf: NotificationReceiver,
                   n: int) -> list[tuple[str, SmfSim]]:
    out = []
    for i in range(n):
        supi = f"imsi-00101{uuid.uuid4().int % 10**10:010d}"
        r = await client.post(f"{oam}/provisioning/v1/subscribers", headers=ADMIN, json={
            "supi": supi, "brand": "testco", "homeNetwork": "northwind",
            "planOfferId": "t-unlimited"})
        assert r.status_code == 201, r.text
        pol = PolicySim(client, sbi, supi, smf.url(f"/smf/{i}"))
        assert (await pol.create()).status_code == 201
        chg = SmfSim(httpx_transport(client, sbi), supi, notify_uri=smf.url(f"/chf/{i}"))
        ex = await chg.create(requested=CAP)
        assert ex.status == 201, ex.response
        out.append((f"/smf/{i}/update", chg))
    return out


async def _cross(chg: SmfSim, path: str, smf: NotificationReceiver) -> float:
    granted = chg.granted
    t0 = time.monotonic()
    ex = await chg.update(Usage(granted // 4, granted - granted // 4, "QUOTA_EXHAUSTED"),
                          requested=1024 * 1024)
    assert ex.status == 200, ex.response
    answered = time.monotonic()
    got = await smf.wait_for(lambda r: r.path == path, timeout_s=10)
    assert got.json["smPolicyDecision"]["sessRules"], got.json
    ANSWER_S.append(answered - t0)
    return got.monotonic - t0


async def measure(crossings: int, concurrency: int) -> dict[str, list[float]]:
    db = embedded.start(None)
    try:
        with tempfile.TemporaryDirectory() as tmp, running_nf(
                db.uri, "lat_" + uuid.uuid4().hex[:8], Path(tmp),
                extra_env={"NF_CATALOG_DIR": str(TEST_CATALOG), "NF_LOG_LEVEL": "WARNING"},
        ) as nf, NotificationReceiver(max_records=100_000) as smf:
            limits = httpx.Limits(max_connections=4)
            async with httpx.AsyncClient(http1=False, http2=True, timeout=10,
                                         limits=limits) as client:
                sessions = await _prepare(client, nf.sbi, nf.oam, smf,
                                          crossings + crossings)
                serial = [await _cross(chg, path, smf) for path, chg in sessions[:crossings]]
                sem = asyncio.Semaphore(concurrency)

                async def one(path: str, chg: SmfSim) -> float:
                    async with sem:
                        return await _cross(chg, path, smf)

                loaded = await asyncio.gather(*(one(p, c) for p, c in sessions[crossings:]))
                METRICS.append((await client.get(nf.oam + "/metrics")).text)
        return {"serial": serial, "loaded": list(loaded)}
    finally:
        db.stop()


def report(results: dict[str, list[float]], concurrency: int) -> str:
    lines = ["| run | crossings | p50 ms | p90 ms | p99 ms | max ms | mean ms |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, vals in results.items():
        ms = [v * 1000 for v in vals]
        label = "one at a time" if name == "serial" else f"{concurrency} concurrent"
        lines.append(f"| {label} | {len(ms)} | {pct(ms, 50):.1f} | {pct(ms, 90):.1f} | "
                     f"{pct(ms, 99):.1f} | {max(ms):.1f} | {statistics.fmean(ms):.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crossings", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    results = asyncio.run(measure(args.crossings, args.concurrency))
    table = report(results, args.concurrency)
    for label, part in (("one at a time", ANSWER_S[:args.crossings]),
                        (f"{args.concurrency} concurrent", ANSWER_S[args.crossings:])):
        ms = [v * 1000 for v in part]
        table += (f"\n\nThe crossing CHF update's own response time ({label}): "
                  f"p50 {pct(ms, 50):.1f} ms, p99 {pct(ms, 99):.1f} ms.")
    delay = [line for line in (METRICS[0] if METRICS else "").splitlines()
             if line.startswith("nf_notification_delay_seconds") and "pcf.update" in line]
    if delay:
        table += "\n\nOutbox enqueue -> SMF answered, pcf.update (all crossings):\n" + \
            "\n".join(delay)
    print(table)
    if args.out is not None:
        args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
