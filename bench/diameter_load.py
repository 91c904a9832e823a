"""``python -m bench.diameter_load``: the Diameter load generator of ``python -m bench
--interface diameter`` — several PGWs of the host networks against the NF's Diameter port.

Its one job is the 4G twin of the SBI load generator (``bench/loadgen``): each PGW is one
TCP connection (CER first) carrying many sessions at once; a closed loop of N concurrent
subscribers each plays Gx CCR-I → Gy CCR-I (RSU) → K Gy CCR-U (USU what the last grant
allowed, RSU again) → Gy CCR-T (final USU) → Gx CCR-T, over the seeded population (only
the subscribers of a network its PGWs serve, disjoint per repeated run, as the SBI's).
A small-cap subscriber's CCR-U that reaches its cap is a crossing: the PCF's new decision
must come back as a Gx RAR on the session's connection (answered RAA 2001); its latency is
timed from that CCR-U's send (and from its CCA) to the RAR's arrival.

Output: one JSON document in ``--out`` shaped like the SBI generator's (``ops`` per CCR
kind, ``errors``, ``throttle``, ``client_cpu``), plus ``ccr`` (all CCAs' latency).
"window begins" / "window ends" on stderr tell the caller when to sample CPU. Loopback only,
asyncio (uvloop when installed), the NF's own codec wrapper over python-diameter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nf.diameter import codec
from nf.diameter.base import APP_GX, APP_GY
from nf.diameter.codec import Avp, Message

V = codec.VENDOR_3GPP
INITIAL, UPDATE, TERMINATION = 1, 2, 3
RATING_GROUP = 10
# AVP codes (RFC 4006; TS 29.212 and TS 32.299, vendor 10415).
CC_REQUEST_NUMBER, CC_REQUEST_TYPE, SUBSCRIPTION_ID = 415, 416, 443
SUBSCRIPTION_ID_DATA, SUBSCRIPTION_ID_TYPE, SERVICE_CONTEXT_ID = 444, 450, 461
MSCC, RSU, USU, GSU, CC_TOTAL_OCTETS = 456, 437, 446, 431, 421
CC_INPUT_OCTETS, CC_OUTPUT_OCTETS, RATING_GROUP_AVP, MSI = 412, 414, 432, 455
SERVICE_INFORMATION, PS_INFORMATION, SGSN_MCC_MNC = 873, 874, 18
CALLED_STATION_ID, FRAMED_IP_ADDRESS = 30, 8
QOS_INFORMATION, APN_AMBR_DL = 1016, 1040


def log(msg: str) -> None:
    print(f"diameter-load: {msg}", file=sys.stderr, flush=True)


def latency(samples: Sequence[float], window_s: float) -> dict[str, Any]:
    """Count, rate and nearest-rank percentiles (ms) of samples, as the SBI generator's."""
    if not samples:
        return {"count": 0, "per_s": 0.0, "mean_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0,
                "p99_ms": 0.0, "max_ms": 0.0}
    s = sorted(samples)

    def pct(q: float) -> float:
        return round(s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))], 3)

    return {"count": len(s), "per_s": round(len(s) / window_s, 3) if window_s > 0 else 0.0,
            "mean_ms": round(sum(s) / len(s), 3), "p50_ms": pct(0.5), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "max_ms": round(s[-1], 3)}


async def next_request(reader: asyncio.StreamReader,
                       pending: dict[int, asyncio.Future[Message]]
                       ) -> tuple[codec.Header, Message]:
    """The next request the NF sends on a client's connection; the answers read on the way
    settle their callers' futures (``pending``, by Hop-by-Hop id)."""
    while True:
        head = await reader.readexactly(codec.HEADER_BYTES)
        hdr = codec.read_header(head)
        msg = codec.decode(head + await reader.readexactly(hdr.length - codec.HEADER_BYTES))
        if hdr.is_request:
            return hdr, msg
        fut = pending.pop(hdr.hop_by_hop, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)


async def stop_reading(task: asyncio.Task[None], writer: asyncio.StreamWriter) -> None:
    """End a client connection's reading task (``next_request`` in a loop) and close the
    connection: the load generator's PGWs and the tests' PCEF and PCRF."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await task
    writer.close()


@dataclass
class Sub:
    imsi: str
    plmn: str
    network: str
    cap_bytes: int
    used: int = 0
    busy: bool = False


@dataclass
class Crossing:
    sent: float
    ambr_dl: int | None  # the session's APN-AMBR DL before the cap
    answered: float | None = None
    notified: float | None = None
    new_dl: int | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Recorder:
    """Latencies of the window, errors by cause (warm-up apart), crossings and RARs."""

    start: float = 0.0
    end: float = math.inf
    lat: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    warm: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    crossings: dict[str, Crossing] = field(default_factory=dict)
    ambr: dict[str, int | None] = field(default_factory=dict)
    rar: dict[str, int] = field(default_factory=lambda: {
        "received": 0, "unexpected": 0, "duplicate": 0, "speed_same": 0, "early": 0})

    def ok(self, op: str, t0: float, t1: float) -> None:
        if self.start <= t1 <= self.end:
            self.lat.setdefault(op, []).append((t1 - t0) * 1e3)

    def fail(self, op: str, cause: str) -> None:
        into = self.warm if time.monotonic() < self.start else self.errors
        key = f"{op} {cause}"
        into[key] = into.get(key, 0) + 1

    def outcome(self, key: str) -> None:
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    def on_rar(self, session_id: str, at: float, new_dl: int | None) -> None:
        self.rar["received"] += 1
        c = self.crossings.get(session_id)
        if c is None:
            self.rar["unexpected"] += 1
        elif c.notified is not None:
            self.rar["duplicate"] += 1
        else:
            c.notified, c.new_dl = at, new_dl
            c.arrived.set()
            self.rar["speed_same"] += int(new_dl is None or new_dl == c.ambr_dl)
            self.rar["early"] += int(c.answered is None)

    def throttle(self) -> dict[str, Any]:
        done = [c for c in self.crossings.values() if c.notified is not None]
        send = [(c.notified - c.sent) * 1e3 for c in done if c.notified is not None]
        ans = [(c.notified - c.answered) * 1e3 for c in done
               if c.notified is not None and c.answered is not None]
        example = next((c.new_dl for c in done if c.new_dl is not None), None)
        return {"crossings": len(self.crossings), "notified": len(done),
                "missing": len(self.crossings) - len(done), "from_send": latency(send, 0),
                "from_response": latency(ans, 0), "example_throttled_apn_ambr_dl": example}


class Pgw:
    """One PGW (PCEF and Gy client under one Origin-Host): one connection, many sessions;
    answers are matched by Hop-by-Hop id, the NF's RAR and DWR answered here."""

    def __init__(self, host: str, port: int, origin_host: str, realm: str, rec: Recorder,
                 live_gx: set[str]) -> None:
        self.addr = (host, port)
        self.origin_host, self.realm = origin_host, realm
        self.rec, self.live_gx = rec, live_gx
        self._ids = itertools.count(((int(time.time()) & 0xFFF) << 20)
                                    | random.getrandbits(20))
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._sessions = itertools.count(1)
        self._boot = int(time.time())

    def origin(self) -> list[Avp]:
        return [codec.new_avp(codec.AVP_ORIGIN_HOST, self.origin_host.encode()),
                codec.new_avp(codec.AVP_ORIGIN_REALM, self.realm.encode())]

    def session_id(self, app: str) -> str:
        return f"{self.origin_host};{self._boot};{next(self._sessions)};{app}"

    async def open(self, gx: bool) -> None:
        self._reader, self._writer = await asyncio.open_connection(*self.addr)
        self._task = asyncio.create_task(self._read())
        avps = [*self.origin(), codec.new_avp(codec.AVP_HOST_IP_ADDRESS, "127.0.0.1"),
                codec.new_avp(codec.AVP_VENDOR_ID, 0),
                codec.new_avp(codec.AVP_PRODUCT_NAME, "bench-pgw"),
                codec.new_avp(codec.AVP_SUPPORTED_VENDOR_ID, V),
                codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY)]
        if gx:
            avps.append(codec.new_avp(codec.AVP_VENDOR_SPECIFIC_APPLICATION_ID, [
                codec.new_avp(codec.AVP_VENDOR_ID, V),
                codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GX)]))
        cea = await self.call(codec.CMD_CER, 0, avps, 10.0)
        rc = codec.get_int(cea, codec.AVP_RESULT_CODE)
        if rc != codec.SUCCESS:
            raise RuntimeError(f"{self.origin_host}: CEA {rc}")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call(codec.CMD_DPR, 0, [
                *self.origin(), codec.new_avp(codec.AVP_DISCONNECT_CAUSE, 0)], 2.0)
        await stop_reading(self._task, self._writer)

    async def _read(self) -> None:
        while True:
            hdr, msg = await next_request(self._reader, self._pending)
            rc = codec.SUCCESS
            if hdr.command == codec.CMD_RAR:
                sid = codec.get_str(msg, codec.AVP_SESSION_ID) or ""
                qos = codec.find(msg, QOS_INFORMATION, V)
                dl = codec.get_int(qos, APN_AMBR_DL, V) if qos is not None else None
                self.rec.on_rar(sid, time.monotonic(), dl)
                if sid not in self.live_gx:
                    rc = codec.UNKNOWN_SESSION_ID
            elif hdr.command != codec.CMD_DWR:
                rc = codec.COMMAND_UNSUPPORTED
            self._writer.write(codec.encode(
                codec.answer(msg, rc, self.origin_host, self.realm)))

    async def call(self, command: int, app_id: int, avps: Sequence[Avp],
                   timeout_s: float) -> Message:
        n = next(self._ids) & 0xFFFFFFFF
        req = codec.request(command, app_id, avps, hop_by_hop=n, end_to_end=n,
                            proxiable=app_id != 0)
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[n] = fut
        self._writer.write(codec.encode(req))
        try:
            return await asyncio.wait_for(fut, timeout_s)
        finally:
            self._pending.pop(n, None)


@dataclass(frozen=True)
class Params:
    dest_realm: str
    updates: int
    request_bytes: int
    usage_bytes: int
    think_s: float
    timeout_s: float
    throttle_wait_s: float
    gx: bool


class Runner:
    def __init__(self, p: Params, pgws: dict[str, list[Pgw]], subs: list[Sub],
                 rec: Recorder, live_gx: set[str]) -> None:
        self.p, self.pgws, self.subs, self.rec, self.live_gx = p, pgws, subs, rec, live_gx
        self.stopping = False
        self.next = 0
        self.sessions = {"started": 0, "finished": 0, "failed": 0, "no_subscriber": 0}

    def take(self) -> Sub | None:
        for _ in range(len(self.subs)):
            self.next += 1
            s = self.subs[self.next % len(self.subs)]
            if not s.busy:
                s.busy = True
                return s
        return None

    async def pause(self) -> bool:
        if self.p.think_s > 0:
            await asyncio.sleep(self.p.think_s / 2 + random.random() * self.p.think_s)
        return not self.stopping

    async def call(self, pgw: Pgw, op: str, app_id: int, avps: list[Avp]) -> Message | None:
        """One CCR; its CCA when Result-Code is 2001, else None (the cause recorded)."""
        t0 = time.monotonic()
        try:
            ans = await pgw.call(codec.CMD_CCR, app_id, avps, self.p.timeout_s)
        except TimeoutError:
            self.rec.fail(op, "timeout")
            return None
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            self.rec.fail(op, f"connection:{type(e).__name__}")
            return None
        t1 = time.monotonic()
        rc = codec.get_int(ans, codec.AVP_RESULT_CODE)
        if rc is None:
            exp = codec.find(ans, codec.AVP_EXPERIMENTAL_RESULT)
            rc = codec.get_int(exp, codec.AVP_EXPERIMENTAL_RESULT_CODE) if exp else None
        if rc != codec.SUCCESS:
            self.rec.fail(op, f"diameter:{rc}")
            return None
        self.rec.ok(op, t0, t1)
        self.rec.ok("ccr", t0, t1)
        return ans

    def head(self, pgw: Pgw, sid: str, app_id: int, rtype: int, n: int) -> list[Avp]:
        return [codec.new_avp(codec.AVP_SESSION_ID, sid), *pgw.origin(),
                codec.new_avp(codec.AVP_DESTINATION_REALM, self.p.dest_realm.encode()),
                codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, app_id),
                codec.new_avp(CC_REQUEST_TYPE, rtype), codec.new_avp(CC_REQUEST_NUMBER, n)]

    @staticmethod
    def subscription(sub: Sub) -> Avp:
        return codec.new_avp(SUBSCRIPTION_ID, [codec.new_avp(SUBSCRIPTION_ID_TYPE, 1),
                                               codec.new_avp(SUBSCRIPTION_ID_DATA, sub.imsi)])

    def gy(self, pgw: Pgw, sid: str, sub: Sub, rtype: int, n: int,
           used: int | None) -> list[Avp]:
        inner: list[Avp] = []
        if rtype != TERMINATION:
            inner.append(codec.new_avp(RSU, [codec.new_avp(CC_TOTAL_OCTETS,
                                                           self.p.request_bytes)]))
        if used is not None:
            up = used // 5
            inner.append(codec.new_avp(USU, [codec.new_avp(CC_TOTAL_OCTETS, used),
                                             codec.new_avp(CC_INPUT_OCTETS, up),
                                             codec.new_avp(CC_OUTPUT_OCTETS, used - up)]))
        inner.append(codec.new_avp(RATING_GROUP_AVP, RATING_GROUP))
        return [*self.head(pgw, sid, APP_GY, rtype, n),
                codec.new_avp(SERVICE_CONTEXT_ID, "32251@3gpp.org"), self.subscription(sub),
                codec.new_avp(MSI, 1), codec.new_avp(MSCC, inner),
                codec.new_avp(SERVICE_INFORMATION, [codec.new_avp(PS_INFORMATION, [
                    codec.new_avp(SGSN_MCC_MNC, sub.plmn, V)], V)], V)]

    def grant(self, op: str, cca: Message) -> int:
        g = 0
        for m in codec.find_all(cca, MSCC):
            rc = codec.get_int(m, codec.AVP_RESULT_CODE)
            if rc is not None and rc != codec.SUCCESS:
                self.rec.outcome(f"{op} {rc}")
            gsu = codec.find(m, GSU)
            if gsu is not None:
                g = codec.get_int(gsu, CC_TOTAL_OCTETS) or 0
        return g

    async def loop(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        while not self.stopping:
            sub = self.take()
            if sub is None:
                self.sessions["no_subscriber"] += 1
                self.rec.fail("session", "generator:population-exhausted")
                await asyncio.sleep(0.01)
                continue
            self.sessions["started"] += 1
            try:
                ok = await self.session(sub)
            finally:
                sub.busy = False
            if ok:
                self.sessions["finished"] += 1
            elif not self.stopping:
                self.sessions["failed"] += 1
                await asyncio.sleep(0.05)  # a failing NF is not hammered in a tight loop

    async def session(self, sub: Sub) -> bool:
        nets = self.pgws[sub.network]
        pgw = nets[self.sessions["started"] % len(nets)]
        gx_sid = pgw.session_id("gx")
        if self.p.gx:
            self.live_gx.add(gx_sid)
            cca = await self.call(pgw, "gx_ccr_i", APP_GX, [
                *self.head(pgw, gx_sid, APP_GX, INITIAL, 0), self.subscription(sub),
                codec.new_avp(CALLED_STATION_ID, "internet"),
                codec.new_avp(SGSN_MCC_MNC, sub.plmn, V),
                codec.new_avp(FRAMED_IP_ADDRESS, random.randbytes(4))])
            if cca is None:
                self.live_gx.discard(gx_sid)
                return False
            qos = codec.find(cca, QOS_INFORMATION, V)
            self.rec.ambr[gx_sid] = codec.get_int(qos, APN_AMBR_DL, V) if qos else None
        try:
            return await self._charge(pgw, sub, gx_sid)
        finally:
            self.live_gx.discard(gx_sid)

    async def _charge(self, pgw: Pgw, sub: Sub, gx_sid: str) -> bool:
        sid = pgw.session_id("gy")
        n = 0
        if not await self.pause():
            return False
        cca = await self.call(pgw, "gy_ccr_i", APP_GY, self.gy(pgw, sid, sub, INITIAL, n, None))
        if cca is None:
            return False
        granted = self.grant("gy_ccr_i", cca)
        for _ in range(self.p.updates):
            if not await self.pause():
                return False
            n += 1
            used = min(granted, self.p.usage_bytes)
            crosses = (self.p.gx and sub.cap_bytes > 0 and sub.used < sub.cap_bytes
                       <= sub.used + used)
            sub.used += used
            if crosses:
                self.rec.crossings[gx_sid] = Crossing(time.monotonic(),
                                                      self.rec.ambr.get(gx_sid))
            cca = await self.call(pgw, "gy_ccr_u", APP_GY,
                                  self.gy(pgw, sid, sub, UPDATE, n, used))
            if crosses:
                self.rec.crossings[gx_sid].answered = time.monotonic()
            if cca is None:
                return False
            granted = self.grant("gy_ccr_u", cca)
        if not await self.pause():
            return False
        used = min(granted, self.p.usage_bytes)
        sub.used += used
        if await self.call(pgw, "gy_ccr_t", APP_GY,
                           self.gy(pgw, sid, sub, TERMINATION, n + 1, used)) is None:
            return False
        if not self.p.gx:
            return True
        # A session that crossed keeps its Gx session until the RAR came (at most
        # --throttle-wait), or the PCF would have no session left to throttle.
        c = self.rec.crossings.get(gx_sid)
        if c is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.arrived.wait(), self.p.throttle_wait_s)
        return await self.pause() and await self.call(
            pgw, "gx_ccr_t", APP_GX,
            self.head(pgw, gx_sid, APP_GX, TERMINATION, 1)) is not None


def population(path: Path, part: int, parts: int, seed: int, networks: set[str]) -> list[Sub]:
    """The seeded subscribers of the served networks whose position modulo ``parts`` is
    ``part``, shuffled (the SBI generator's rule: repeated runs use disjoint subscribers)."""
    subs: list[Sub] = []
    for g in json.loads(path.read_text())["groups"]:
        for i in range(g["first"], g["first"] + g["count"]):
            subs.append(Sub(f"{g['supi_prefix']}{i:0{g['digits']}d}".removeprefix("imsi-"),
                            g["home_plmn"], g["network"], int(g["cap_bytes"])))
    kept = [s for i, s in enumerate(subs) if i % parts == part and s.network in networks]
    if not kept:
        raise SystemExit("diameter-load: empty population")
    random.Random(seed).shuffle(kept)
    return kept


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def amain(a: argparse.Namespace) -> dict[str, Any]:
    rec = Recorder()
    live_gx: set[str] = set()
    # --pgws: [{"network": id, "realm": realm, "hosts": [origin hosts]}]
    layout = json.loads(a.pgws)
    pgws = {n["network"]: [Pgw(a.host, a.port, h, n["realm"], rec, live_gx)
                           for h in n["hosts"]] for n in layout}
    all_pgws = [p for ps in pgws.values() for p in ps]
    await asyncio.gather(*(p.open(a.gx) for p in all_pgws))
    subs = population(Path(a.population), a.part, a.parts, a.seed, set(pgws))
    p = Params(a.dest_realm, a.updates, a.request_bytes, a.usage_bytes, a.think,
               a.timeout, a.throttle_wait, a.gx)
    runner = Runner(p, pgws, subs, rec, live_gx)
    now = time.monotonic()
    rec.start, rec.end = now + a.warmup, now + a.warmup + a.duration
    log(f"{len(all_pgws)} PGW connection(s), {a.concurrency} concurrent subscribers of "
        f"{len(subs)}, Gx {'on' if a.gx else 'off'}")
    # Sessions start spread over the first half of the warm-up: a cold NF is not hit by
    # all of them at once.
    tasks = [asyncio.create_task(runner.loop(a.warmup / 2 * i / a.concurrency))
             for i in range(a.concurrency)]
    await asyncio.sleep(a.warmup)
    log("window begins")
    cpu0 = cpu_s()
    await asyncio.sleep(a.duration)
    cpu1 = cpu_s()
    log("window ends")
    runner.stopping = True
    _, late = await asyncio.wait(tasks, timeout=a.timeout + a.throttle_wait + 5)
    for t in late:
        t.cancel()
    # RARs of crossings just before the end still arrive (at most --grace).
    waits = [c.arrived.wait() for c in rec.crossings.values() if c.notified is None]
    if waits:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), a.grace)
    await asyncio.gather(*(pg.close() for pg in all_pgws))
    ops = {op: latency(s, a.duration) for op, s in rec.lat.items() if op != "ccr"}
    return {
        "mode": "closed", "interface": "diameter", "window_s": a.duration,
        "config": {k: v for k, v in vars(a).items() if k not in ("pgws", "out")}
        | {"target": f"{a.host}:{a.port}", "pgws": layout},
        "ops": ops, "ccr": latency(rec.lat.get("ccr", []), a.duration),
        "errors": rec.errors, "warmup_errors": rec.warm,
        "errors_total": sum(rec.errors.values()), "outcomes": rec.outcomes,
        "sessions": runner.sessions, "throttle": rec.throttle() if a.gx else None,
        "notifications": {"rar": rec.rar["received"],
                          "unexpected_rar": rec.rar["unexpected"],
                          "duplicate_rar": rec.rar["duplicate"],
                          "rar_speed_unchanged": rec.rar["speed_same"],
                          "rar_before_cca": rec.rar["early"]},
        "client_cpu": {"seconds": round(cpu1 - cpu0, 3),
                       "pct_of_one_core": round(100 * (cpu1 - cpu0) / a.duration, 3)},
        "connections": {"pgws": len(all_pgws)},
    }


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.diameter_load", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "::1", "localhost"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pgws", required=True,
                   help='JSON: [{"network": id, "realm": realm, "hosts": [Origin-Host, ...]}]')
    p.add_argument("--dest-realm", required=True, help="the NF's Origin-Realm")
    p.add_argument("--population", required=True)
    p.add_argument("--part", type=int, default=0)
    p.add_argument("--parts", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--updates", type=int, default=5)
    p.add_argument("--request-bytes", type=int, default=1 << 20)
    p.add_argument("--usage-bytes", type=int, default=1 << 20)
    p.add_argument("--think", type=float, default=0.0)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--throttle-wait", type=float, default=2.0)
    p.add_argument("--grace", type=float, default=2.0,
                   help="after the last session, wait this long at most for RARs")
    p.add_argument("--no-gx", dest="gx", action="store_false", help="Gy sessions only")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.concurrency < 1 or a.duration <= 0 or a.warmup < 0 or not 0 <= a.part < a.parts:
        p.error("bad --concurrency, --duration, --warmup or --part/--parts")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(sys.argv[1:] if argv is None else argv)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(amain(a))
    else:
        result = uvloop.run(amain(a))
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
