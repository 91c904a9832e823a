"""Gx usage monitoring (TS 29.212 §4.5.17): the session-level Usage-Monitoring-Information
a Gx session is armed with, so a PCEF that meters usage itself reports it at the cap.

Its one job: the monitoring AVPs for a subscriber now — Monitoring-Key ``data-cap`` with a
Granted-Service-Unit of the full-speed bytes left before the cap, and the USAGE_REPORT
Event-Trigger — or none once the subscriber is throttled (monitoring stops). The bytes are
those of the balance the PCF read for its decision (a CCA), or read from the ledger (a
RAR); the cap itself is still enforced by the charging path and the RAR it causes, so a
report (CCR-U with USAGE_REPORT) only makes the PCF decide again and re-arms
the monitoring. It never charges a reported byte: usage is charged over Gy or Nchf.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from nf.clock import Clock
from nf.diameter import codec
from nf.diameter.codec import VENDOR_3GPP, Avp, Message
from nf.ledger.port import BalanceView, BucketView, Ledger

AVP_GRANTED_SERVICE_UNIT = 431
AVP_USED_SERVICE_UNIT = 446
AVP_CC_TOTAL_OCTETS = 421
AVP_EVENT_TRIGGER = 1006
AVP_MONITORING_KEY = 1066
AVP_USAGE_MONITORING_INFORMATION = 1067
AVP_USAGE_MONITORING_LEVEL = 1068
USAGE_REPORT = 33
SESSION_LEVEL = 0
MONITORING_KEY = b"data-cap"
# The buckets whose bytes are the full-speed allowance (roaming passes are not).
_HOME = frozenset({"plan", "addon", "pool"})


def bytes_left(buckets: Iterable[BucketView], now: datetime) -> int:
    """The full-speed bytes left before the cap: what the home buckets valid now have not
    used (a family pool counted whole, so the threshold may lie past a member's own cap;
    the charging path throttles there anyway)."""
    return sum(max(0, b.quota_bytes - b.used_bytes) for b in buckets
               if b.kind in _HOME and b.zone is None and b.valid_from <= now
               and (b.valid_to is None or now < b.valid_to))


def monitoring_avps(left: int) -> list[Avp]:
    """Usage-Monitoring-Information (M bit clear, as TS 29.212 §5.3.60 asks) with ``left``
    bytes granted, and the USAGE_REPORT trigger; nothing for ``left`` <= 0."""
    if left <= 0:
        return []
    umi = codec.new_avp(AVP_USAGE_MONITORING_INFORMATION, [
        codec.new_avp(AVP_MONITORING_KEY, MONITORING_KEY, VENDOR_3GPP, mandatory=False),
        codec.new_avp(AVP_GRANTED_SERVICE_UNIT, [codec.new_avp(AVP_CC_TOTAL_OCTETS, left)]),
        codec.new_avp(AVP_USAGE_MONITORING_LEVEL, SESSION_LEVEL, VENDOR_3GPP,
                      mandatory=False),
    ], VENDOR_3GPP, mandatory=False)
    return [umi, codec.new_avp(AVP_EVENT_TRIGGER, USAGE_REPORT, VENDOR_3GPP)]


def reported_octets(msg: Message) -> int | None:
    """The bytes a CCR-U reports for the ``data-cap`` key (None: no report)."""
    for umi in codec.find_all(msg, AVP_USAGE_MONITORING_INFORMATION, VENDOR_3GPP):
        if codec.get_bytes(umi, AVP_MONITORING_KEY, VENDOR_3GPP) != MONITORING_KEY:
            continue
        total = 0
        for usu in codec.find_all(umi, AVP_USED_SERVICE_UNIT):
            total += codec.get_int(usu, AVP_CC_TOTAL_OCTETS) or 0
        return total
    return None


class UsageMonitor:
    """Reads the ledger for the monitoring AVPs of a subscriber's Gx session."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    async def avps(self, supi: str) -> list[Avp]:
        return self.avps_of(await self._ledger.balance(supi, self._clock.now()))

    def avps_of(self, balance: BalanceView | None) -> list[Avp]:
        """The monitoring AVPs from a balance read already (the PCF's, for its decision)."""
        if balance is None or balance.subscriber.speed.reason in ("throttled", "blocked"):
            return []
        return monitoring_avps(bytes_left(balance.buckets, self._clock.now()))
