"""The SMS channel: SMPP 3.4 towards the SMSC through ``aiosmpplib``.

One transceiver bind per NF process, kept up with ``enquire_link`` and re-established with
exponential backoff (the library's). The feeder claims due SMS notices from the outbox and
submits each part (``submit_sm``, registered delivery, pre-encoded: GSM-7 or UCS-2 with a
concatenation UDH) within a window of unanswered requests and a throughput limit.
``submit_sm_resp`` records the SMSC message id of each part; ``deliver_sm`` receipts set
the final state. ESME_RTHROTTLED / ESME_RMSGQFUL pause the feeder with a doubling backoff
and put the notice back; a part without an answer in time is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiosmpplib import (
    ESME,
    NPI,
    TON,
    AbstractBroker,
    AbstractHook,
    AbstractThrottleHandler,
    BindMode,
    DeliverSm,
    GenericNack,
    PhoneNumber,
    SmppCommandStatus,
    SmppMessage,
    SmppSessionState,
    SubmitSm,
    SubmitSmResp,
)
from aiosmpplib.correlator import SimpleCorrelator
from aiosmpplib.retrytimer import SimpleExponentialBackoff

from nf import logs
from nf.config import SmsSettings
from nf.errors import NfError
from nf.runtime import Runtime
from nf.subnotify.holder import this_process
from nf.subnotify.outbox import NoticeOutbox, reclaim_at_start
from nf.subnotify.text import DCS_UCS2

log = logging.getLogger("nf.subnotify.smpp")
THROTTLING = (SmppCommandStatus.ESME_RTHROTTLED, SmppCommandStatus.ESME_RMSGQFUL)
TRANSIENT = (SmppCommandStatus.ESME_RSYSERR, SmppCommandStatus.ESME_RSUBMITFAIL)
MAX_THROTTLE_BACKOFF_S = 60.0
# SMSC answers are recorded by this many tasks, off the library's receive loop.
ANSWER_WORKERS = 4
# A receipt may overtake the record of its submit_sm_resp (another answer task): look
# again this many times, 50 ms apart.
RECEIPT_LOOKUPS = 10


class _Queue(AbstractBroker):  # type: ignore[misc]
    """The library's send queue, bounded by the window."""

    def __init__(self, size: int) -> None:
        self.q: asyncio.Queue[SmppMessage] = asyncio.Queue(maxsize=size)

    async def enqueue(self, message: SmppMessage) -> None:
        await self.q.put(message)

    async def dequeue(self) -> SmppMessage:
        return await self.q.get()


class _NoThrottle(AbstractThrottleHandler):  # type: ignore[misc]
    """Throttling is handled by the feeder (it holds the window and the outbox)."""

    async def throttled(self) -> None: ...

    async def not_throttled(self) -> None: ...

    async def allow_request(self) -> bool:
        return True

    async def throttle_delay(self) -> float:
        return 0.0


class _LibLog(logging.Handler):
    """The library's own log lines, re-emitted through the NF's logger."""

    def emit(self, record: logging.LogRecord) -> None:
        log.handle(record)


@dataclass
class _Flight:
    doc_id: str
    part: int
    deadline: float  # clock.monotonic()
    parts: int = 1
    brand: str = ""
    due: datetime | None = None


def part_log_id(doc_id: str, part: int) -> str:
    return f"{doc_id}#{part}"


def split_log_id(log_id: str) -> tuple[str, int] | None:
    doc_id, sep, n = log_id.rpartition("#")
    if not sep or not n.isdigit():
        return None
    return doc_id, int(n)


class SmppChannel:
    def __init__(self, rt: Runtime, outbox: NoticeOutbox, wake: asyncio.Event,
                 count: Callable[[str, str, str], None],
                 marketing_ok: Callable[[dict[str, Any]], Any]) -> None:
        self.rt = rt
        self.cfg: SmsSettings = rt.settings.sms
        self.outbox = outbox
        self.wake = wake
        self.count = count  # (brand, channel, state)
        self.marketing_ok = marketing_ok
        self.window = asyncio.Semaphore(self.cfg.window)
        self.flights: dict[str, _Flight] = {}
        self.idle = asyncio.Event()  # set while nothing is in flight
        self.idle.set()
        self.broker = _Queue(self.cfg.window)
        self.answers: asyncio.Queue[tuple[SmppMessage, int]] = asyncio.Queue(
            maxsize=self.cfg.window * 4)
        self.throttle_until = 0.0
        self.throttle_s = 0.0
        self._next_send = 0.0
        self.holder = this_process(rt.settings.instance_id)
        self.owner = f"{rt.settings.instance_id}:{id(self):x}"  # the SMPP correlator's
        self.esme: ESME | None = None

    # ------------------------------------------------------------------ the worker

    async def run(self) -> None:
        cfg = self.cfg
        hook = _Hook(self)
        self.esme = esme = ESME(
            smsc_host=cfg.host, smsc_port=cfg.port, system_id=cfg.system_id,
            password=cfg.password, system_type=cfg.system_type,
            bind_mode=BindMode.TRANSCEIVER, enquire_link_interval=cfg.enquire_link_interval_s,
            hook=hook, broker=self.broker, throttle_handler=_NoThrottle(),
            correlator=SimpleCorrelator(self.owner, max_ttl_response=cfg.response_timeout_s,
                                        max_ttl_delivery=cfg.response_timeout_s * 6),
            retry_timer=SimpleExponentialBackoff(int(cfg.reconnect_min_s * 1000),
                                                 cfg.reconnect_max_increases),
            log_level=logging.WARNING, log_handler=_LibLog(),
            socket_timeout=cfg.response_timeout_s)
        async with asyncio.TaskGroup() as tg:
            session = tg.create_task(esme.start())
            feeder = tg.create_task(self._feed())
            watch = tg.create_task(self._watch())
            for _ in range(ANSWER_WORKERS):
                tg.create_task(self._answer())
            await self.rt.stopping.wait()
            feeder.cancel()
            watch.cancel()
            with contextlib.suppress(TimeoutError, OSError, NfError):
                await asyncio.wait_for(self._drain(), timeout=self.cfg.response_timeout_s)
            # The library half-closes its stream on unbind; close it for good after.
            writer = getattr(esme, "_writer", None)
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(esme.stop(), timeout=2.0)
            session.cancel()
            if isinstance(writer, asyncio.StreamWriter):
                writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    def bound(self) -> bool:
        return self.esme is not None and \
            self.esme.session_state == SmppSessionState.BOUND_TRX

    async def _drain(self) -> None:
        """Wait for the answers to what is in flight (unanswered parts are re-sent later
        by whichever process claims the notice after its lease)."""
        if self.bound():
            await self.idle.wait()

    async def _rate(self) -> None:
        clock = self.rt.clock
        now = clock.monotonic()
        wait = max(self._next_send - now, self.throttle_until - now)
        if wait > 0:
            await clock.sleep(wait)
            now = clock.monotonic()
        self._next_send = max(now, self._next_send) + 1.0 / self.cfg.throughput_per_s

    async def _feed(self) -> None:
        rt = self.rt
        idle = rt.settings.notices.poll_interval_s
        await reclaim_at_start(self.outbox, "sms", rt.clock.now(), self.holder)
        while not rt.stopping.is_set():
            if not self.bound():
                await rt.pause(0.1)
                continue
            try:
                docs = await self.outbox.claim("sms", rt.clock.now(), self.holder,
                                               self.cfg.window)
            except NfError as e:
                logs.log(log, logging.WARNING, "sms outbox unavailable", detail=e.detail)
                await rt.pause(idle)
                continue
            if not docs:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=idle)
                continue
            for doc in docs:
                await self._send(doc)

    async def _send(self, doc: dict[str, Any]) -> None:
        now = self.rt.clock.now()
        if doc["attempts"] > self.cfg.max_attempts:
            await self.outbox.finish(doc["_id"], now, "failed", "too many attempts")
            self.count(doc["brand"], "sms", "failed")
            return
        if doc.get("marketing") and not await self.marketing_ok(doc):
            await self.outbox.finish(doc["_id"], now, "suppressed", "opted out")
            self.count(doc["brand"], "sms", "suppressed")
            return
        src = doc["source"]
        encoding = "ucs2" if doc["dcs"] == DCS_UCS2 else "gsm0338"
        many = len(doc["parts"]) > 1
        for n, part in enumerate(doc["parts"]):
            if part.get("msg_id"):
                continue  # accepted before a restart: only the missing parts again
            await self.window.acquire()
            try:
                await self._rate()
                msg = SubmitSm(
                    short_message=doc["text"] or " ", encoding=encoding,
                    source=PhoneNumber(src["addr"], TON(src["ton"]), NPI(src["npi"])),
                    destination=PhoneNumber(doc["destination"], TON(self.cfg.dest_ton),
                                            NPI(self.cfg.dest_npi)),
                    esm_class=0x40 if many else 0, registered_delivery=1,
                    validity_period=timedelta(seconds=self.cfg.validity_s),
                    log_id=part_log_id(doc["_id"], n))
                msg.set_encoded_message(bytes.fromhex(part["hex"]))
                self.idle.clear()
                self.flights[msg.log_id] = _Flight(
                    doc["_id"], n, self.rt.clock.monotonic() + self.cfg.response_timeout_s,
                    len(doc["parts"]), doc["brand"], doc["not_before"])
                await self.broker.enqueue(msg)
            except BaseException:
                self.window.release()
                raise

    async def _watch(self) -> None:
        """Parts with no answer in time: give the window back and send the notice again."""
        bound = self.rt.metrics.smsc_bound.labels(f"{self.cfg.host}:{self.cfg.port}")
        while not self.rt.stopping.is_set():
            await self.rt.pause(min(1.0, self.cfg.response_timeout_s))
            bound.set(1 if self.bound() else 0)
            mono = self.rt.clock.monotonic()
            late = [k for k, f in self.flights.items() if f.deadline <= mono]
            for k in late:
                f = self._land(k)
                if f is None:
                    continue
                with contextlib.suppress(NfError):
                    await self.outbox.retry(f.doc_id, self.rt.clock.now(),
                                            self.rt.clock.now(), "no answer from the SMSC")

    # ------------------------------------------------------------------ answers

    async def _answer(self) -> None:
        """Record SMSC answers until the channel stops and none is left."""
        while True:
            try:
                msg, status = await asyncio.wait_for(self.answers.get(), timeout=0.5)
            except TimeoutError:
                if self.rt.stopping.is_set():
                    return
                continue
            try:
                if isinstance(msg, SubmitSmResp | GenericNack):
                    await self.on_response(msg, status)
                elif isinstance(msg, DeliverSm):
                    await self.on_receipt(msg)
            except NfError as e:  # the outbox lease brings the notice back
                logs.log(log, logging.WARNING, "could not record an SMSC answer",
                         detail=e.detail)

    def _land(self, log_id: str) -> _Flight | None:
        f = self.flights.pop(log_id, None)
        if f is not None:
            self.window.release()
        if not self.flights:
            self.idle.set()
        return f

    async def on_response(self, resp: SubmitSmResp | GenericNack, status: int) -> None:
        f = self._land(getattr(resp, "log_id", "") or "")
        if f is None:
            return
        now = self.rt.clock.now()
        if status == SmppCommandStatus.ESME_ROK and isinstance(resp, SubmitSmResp):
            self.throttle_s = 0.0
            done = await self.outbox.part_accepted(f.doc_id, f.part, f.parts,
                                                   resp.message_id, now)
            if done:
                self.count(f.brand, "sms", "submitted")
                if f.due is not None:
                    self.rt.metrics.notification_latency.labels("subscriber_sms").observe(
                        max(0.0, (now - f.due).total_seconds()))
            return
        if status in THROTTLING:
            self.throttle_s = min(MAX_THROTTLE_BACKOFF_S,
                                  (self.throttle_s * 2) or self.cfg.throttle_backoff_s)
            self.throttle_until = self.rt.clock.monotonic() + self.throttle_s
            await self.outbox.retry(f.doc_id, now, now + timedelta(seconds=self.throttle_s),
                                    f"SMSC throttling (0x{status:08x})")
            logs.log(log, logging.WARNING, "SMSC throttling; backing off",
                     status=f"0x{status:08x}", backoff_s=self.throttle_s)
            return
        if status in TRANSIENT or isinstance(resp, GenericNack):
            await self.outbox.retry(f.doc_id, now, now + timedelta(
                seconds=self.cfg.throttle_backoff_s), f"SMSC error 0x{status:08x}")
            return
        await self.outbox.finish(f.doc_id, now, "rejected", f"SMSC refused: 0x{status:08x}")
        logs.log(log, logging.WARNING, "SMSC refused a message", status=f"0x{status:08x}",
                 notice=f.doc_id)

    async def on_error(self, msg: SubmitSm, error: Exception) -> None:
        f = self._land(msg.log_id or "")
        if f is None:
            return
        now = self.rt.clock.now()
        if isinstance(error, ValueError):
            await self.outbox.finish(f.doc_id, now, "failed", f"cannot encode: {error}")
        else:
            await self.outbox.retry(f.doc_id, now, now, f"send failed: {type(error).__name__}")

    async def on_receipt(self, dsm: DeliverSm) -> None:
        r = dsm.parse_receipt()
        mid, stat = str(r.get("id", "")), str(r.get("stat", "UNKNOWN")).upper()
        if not mid:
            return
        doc = None
        for _ in range(RECEIPT_LOOKUPS):
            doc = await self.outbox.receipt(mid, stat, self.rt.clock.now())
            if doc is not None:
                break
            await asyncio.sleep(0.05)
        if doc is not None and doc.get("state") in ("delivered", "undeliverable", "expired",
                                                    "rejected"):
            self.count(doc["brand"], "sms", doc["state"])


class _Hook(AbstractHook):  # type: ignore[misc]
    def __init__(self, ch: SmppChannel) -> None:
        self.ch = ch

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        return None

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes,
                       client_id: str) -> None:
        if isinstance(smpp_message, SubmitSmResp | GenericNack) or (
                isinstance(smpp_message, DeliverSm) and smpp_message.is_receipt()):
            status = int.from_bytes(pdu[8:12], "big") if len(pdu) >= 12 else -1
            await self.ch.answers.put((smpp_message, status))  # bounded: back-pressure

    async def send_error(self, smpp_message: SmppMessage, error: Exception,
                         client_id: str) -> None:
        if isinstance(smpp_message, SubmitSm):
            with contextlib.suppress(NfError):
                await self.ch.on_error(smpp_message, error)

