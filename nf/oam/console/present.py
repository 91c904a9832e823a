"""How the console words what it shows: times in the brand's zone, a notice's status and
the time that goes with it, a charging session with its note laid over it. Plain
functions over data (no I/O), so each rule is tested on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nf.chf.store import from_doc, with_note
from nf.clock import iso_z, utc
from nf.store.mongo import Doc

DEFAULT_ZONE = "UTC"


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo:
    """The named IANA zone; UTC for none or an unknown name (the settings validate names,
    so an unknown one only comes from a stale record)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


@dataclass(frozen=True)
class When:
    """A moment as a person reads it (``text``, local to the brand's zone with the zone's
    abbreviation) and as a machine does (``iso``, UTC, for ``<time datetime=...>``)."""

    text: str
    iso: str

    def __str__(self) -> str:
        return self.text


def local(dt: datetime, tz: ZoneInfo) -> When:
    at = utc(dt).astimezone(tz)
    return When(at.strftime("%Y-%m-%d %H:%M %Z"), iso_z(dt))


# A notice's stored state -> the status an agent reads.
NOTICE_STATUS = {
    "scheduled": "scheduled", "held": "scheduled", "queued": "scheduled",
    "sending": "sending", "submitted": "sent", "delivered": "delivered",
    "undeliverable": "failed", "expired": "failed", "rejected": "failed", "failed": "failed",
    "suppressed": "not sent",
}
WAITING_WHY = {"held": "held for the brand's quiet hours"}


@dataclass(frozen=True)
class NoticeLine:
    status: str  # scheduled | sending | sent | delivered | failed | not sent
    label: str  # what the time is: "due", "sent", "delivered", "failed", ...
    at: datetime | None
    why: str | None  # why a notice waits, or why it failed or was not sent


def notice_line(d: Doc) -> NoticeLine:
    """The status of one outbox document and the time that goes with it: when it is due
    (not sent yet), when it was sent, or when it ended."""
    state = str(d.get("state") or "")
    status = NOTICE_STATUS.get(state, state or "unknown")
    error = str(d["error"])[:200] if d.get("error") else None
    if status == "scheduled":
        why = WAITING_WHY.get(state) or (f"retrying after: {error}" if error else None)
        return NoticeLine(status, "due", d.get("not_before") or d.get("due_at"), why)
    if status == "sending":
        return NoticeLine(status, "since", d.get("updated_at") or d.get("not_before"), None)
    if status == "sent":
        return NoticeLine(status, "sent", d.get("sent_at"), None)
    if status == "delivered":
        return NoticeLine(status, "delivered", d.get("done_at") or d.get("sent_at"), None)
    if status == "not sent":
        return NoticeLine(status, "at", d.get("done_at"), "the subscriber opted out")
    return NoticeLine(status, status, d.get("done_at") or d.get("updated_at"), error)


@dataclass(frozen=True)
class ChargingLine:
    ref: str
    host_network: str
    serving_plmn: str
    roaming: bool
    requests: int  # the last invocation sequence number answered


def charging_line(d: Doc, note: Doc | None) -> ChargingLine:
    """A live charging session as the CHF sees it: the stored document (as of the create or
    the last sync) with the wallet's note of the session laid over it, as the CHF does."""
    s = with_note(from_doc(d), note)
    return ChargingLine(s.ref, s.host_network, s.serving_plmn, s.roaming, s.last_isn)
