"""A fraud case as the care API and the brands' webhooks show it (JSON, times in UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nf.clock import iso_z, utc
from nf.edr.records import Party
from nf.fraud.state import Detection
from nf.store.mongo import Doc

CASE_KIND = "fraud.case"  # the outbox's kind for a case sent to the brand's webhook


def opt_dt(v: Any) -> datetime | None:
    return None if v is None else utc(v)


def _ts(v: Any) -> str | None:
    return None if v is None else iso_z(utc(v))


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso_z(utc(v))
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def case_json(c: Doc, *, evidence: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "caseId": c["_id"], "brand": c.get("brand"), "supi": c["supi"], "rule": c["rule"],
        "status": c["status"], "action": c["action"], "applied": c.get("applied"),
        "detectedAt": _ts(c.get("detected_at")), "openedAt": _ts(c.get("opened_at")),
        "resolvedAt": _ts(c.get("resolved_at")), "resolution": c.get("resolution"),
    }
    if evidence:
        out["trigger"] = c.get("trigger")
        out["evidence"] = _jsonable(c.get("evidence") or {})
        out["audit"] = [_jsonable(a) for a in c.get("audit", [])]
    return out


def party_of(d: Detection | Doc) -> Party:
    """Who a detection or a case is about, as the fraud EDRs name them."""
    if isinstance(d, Detection):
        return Party(supi=d.supi, brand=d.brand)
    return Party(supi=d["supi"], brand=d.get("brand"))
