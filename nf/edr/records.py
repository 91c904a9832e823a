"""The layout of an EDR document, shared by the CHF, the PCF and provisioning.

Every record carries ``time`` (aware UTC), ``day`` ("YYYY-MM-DD", for per-brand daily
reports), ``kind`` ("charging", "policy", "purchase", "status" or "fraud"), ``event``
and the subscriber (``supi``, ``gpsi``, ``brand``) and network (``host_network``,
``serving_plmn``, ``roaming``) it concerns. Charging and policy records also carry
``pdu_session_id`` when the SMF sent it (every charging request that carries it, every
policy record), so charging and policy sessions of one PDU session can be matched.
Volumes are bytes; speeds are kbit/s; prices are minor currency units. Readers (``nf.reports``,
``nf.fraud``) ignore fields they do not know, so fields may be added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class UnitRecord:
    """One rating group of one charging event."""

    rating_group: int
    used_ul: int = 0
    used_dl: int = 0
    used_total: int = 0
    granted: int = 0
    result: str = "SUCCESS"
    debited: tuple[tuple[str, int], ...] = ()  # (bucket id, bytes) the usage was taken from
    overage: int = 0  # reported beyond every bucket
    final: bool = False
    throttled: bool = False
    triggers: tuple[str, ...] = ()  # usage report reasons / trigger types


@dataclass(frozen=True)
class Party:
    """Who and where: shared by charging and policy records."""

    supi: str
    gpsi: str | None = None
    brand: str | None = None
    host_network: str | None = None
    serving_plmn: str | None = None
    roaming: bool = False
    pdu_session_id: int | None = None
    # The interface the request came over: "sbi" (5G service-based), "gy"/"gx"/"sy" (4G);
    # None for records of no interface (purchases, care actions).
    interface: str | None = None


def _base(kind: str, event: str, time: datetime, party: Party) -> dict[str, Any]:
    doc = {"kind": kind, "event": event, "time": time, "day": time.strftime("%Y-%m-%d"),
           "supi": party.supi, "gpsi": party.gpsi, "brand": party.brand,
           "host_network": party.host_network, "serving_plmn": party.serving_plmn,
           "roaming": party.roaming}
    if party.interface is not None:
        doc["interface"] = party.interface
    if party.pdu_session_id is not None:
        doc["pdu_session_id"] = party.pdu_session_id
    return doc


def charging_record(*, event: str, time: datetime, party: Party, charging_data_ref: str,
                    invocation_sequence_number: int | None, result: str,
                    units: Sequence[UnitRecord] = (), record_id: str | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CHF record. ``event``: "create", "update", "release", "supervision_close",
    "aborted". Totals over rating groups are at the top; the detail is in ``units``.
    ``record_id`` (the document ``_id``) makes the write idempotent: a retransmission that
    writes the same record again is stored once."""
    doc = _base("charging", event, time, party)
    doc.update({
        "charging_data_ref": charging_data_ref,
        "invocation_sequence_number": invocation_sequence_number,
        "result": result,
        "rating_groups": sorted({u.rating_group for u in units}),
        "used_ul": sum(u.used_ul for u in units),
        "used_dl": sum(u.used_dl for u in units),
        "used_total": sum(u.used_total for u in units),
        "granted": sum(u.granted for u in units),
        "units": [{
            "rating_group": u.rating_group, "used_ul": u.used_ul, "used_dl": u.used_dl,
            "used_total": u.used_total, "granted": u.granted, "result": u.result,
            "debited": [{"bucket_id": b, "bytes": n} for b, n in u.debited],
            "overage": u.overage, "final": u.final, "throttled": u.throttled,
            "triggers": list(u.triggers),
        } for u in units],
    })
    if record_id is not None:
        doc["_id"] = record_id
    if extra:
        doc.update(extra)
    return doc


@dataclass(frozen=True)
class SpeedRecord:
    uplink_kbps: int
    downlink_kbps: int


def policy_record(*, event: str, time: datetime, party: Party, sm_policy_id: str,
                  speed_before: SpeedRecord | None, speed_after: SpeedRecord | None,
                  reason: str | None = None, record_id: str | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A PCF record. ``event``: "created", "throttled", "restored", "terminated", ...
    with the session AMBR before and after."""
    doc = _base("policy", event, time, party)

    def speed(s: SpeedRecord | None) -> dict[str, int] | None:
        return None if s is None else {"uplink_kbps": s.uplink_kbps,
                                       "downlink_kbps": s.downlink_kbps}

    doc.update({"sm_policy_id": sm_policy_id, "speed_before": speed(speed_before),
                "speed_after": speed(speed_after), "reason": reason})
    if record_id is not None:
        doc["_id"] = record_id
    if extra:
        doc.update(extra)
    return doc


def purchase_record(*, time: datetime, party: Party, offer_id: str, offer_version: int,
                    offer_kind: str, price_cents: int, currency: str,
                    bucket_ids: Sequence[str] = (), zone_name: str | None = None,
                    record_id: str | None = None) -> dict[str, Any]:
    """A purchase through provisioning or care: what was bought, at which price (minor
    units of ``currency``), and the ledger buckets it created (to tell later which pass or
    add-on a usage was debited from)."""
    doc = _base("purchase", "purchase", time, party)
    doc.update({"offer_id": offer_id, "offer_version": offer_version,
                "offer_kind": offer_kind, "price_cents": price_cents, "currency": currency,
                "bucket_ids": list(bucket_ids), "zone_name": zone_name})
    if record_id is not None:
        doc["_id"] = record_id
    return doc


def status_record(*, time: datetime, party: Party, status: str, status_before: str,
                  by: str | None = None, record_id: str | None = None) -> dict[str, Any]:
    """A subscriber status change: ``kind: status``, ``event`` the new status."""
    doc = _base("status", status, time, party)
    doc.update({"status": status, "status_before": status_before, "by": by})
    if record_id is not None:
        doc["_id"] = record_id
    return doc


def fraud_record(*, event: str, time: datetime, party: Party, rule: str, case_id: str | None,
                 action: str | None, detail: dict[str, Any] | None = None,
                 record_id: str | None = None) -> dict[str, Any]:
    """Fraud protection: ``kind: fraud``, ``event`` one of "detected", "action",
    "resolved", "lifted"; ``rule`` and ``case_id`` say which detection."""
    doc = _base("fraud", event, time, party)
    doc.update({"rule": rule, "case_id": case_id, "action": action, "detail": detail or {}})
    if record_id is not None:
        doc["_id"] = record_id
    return doc
