"""What the PCF says to the SMF besides its answers' bodies: the association's id (derived
from what the SMF sent, so a repeated create lands on the same one), its errors, the
decision the SMF holds after a delta, and the pushes the outbox delivers (update,
terminate)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from nf.errors import BadRequest, Forbidden, NfError, NotFound
from nf.notify.port import Notification
from nf.pcf import core
from nf.pcf.core import Answer, PolicyRejected, Verdict

KIND_UPDATE = "pcf.update"
KIND_TERMINATE = "pcf.terminate"


def policy_id(supi: str, pdu_session_id: int, notification_uri: str) -> str:
    """The association's id: the same for a repeated create of one PDU session."""
    key = f"{supi}\x00{pdu_session_id}\x00{notification_uri}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def policy_not_found(sm_policy_id: str) -> NotFound:
    return NotFound(f"no SM policy association {sm_policy_id}", cause="CONTEXT_NOT_FOUND")


def rejection(e: PolicyRejected) -> NfError:
    """The TS 29.512 application errors for a refused association."""
    if e.verdict is Verdict.DENY_UNKNOWN:
        return BadRequest(e.detail, cause="USER_UNKNOWN")
    return Forbidden(e.detail, cause="POLICY_CONTEXT_DENIED")


def head_note(doc: dict[str, Any]) -> Notification:
    """The push that brings the SMF to the stored decision of a policy document."""
    sid, supi = str(doc["_id"]), str(doc["supi"])
    uri, res = str(doc["notificationUri"]), str(doc["resourceUri"])
    if doc.get("ended"):
        return terminate_note(sid, supi, uri, res, "UE_SUBSCRIPTION")
    return update_note(sid, supi, uri, res, dict(doc["decision"]))


def update_note(sid: str, supi: str, notification_uri: str, resource_uri: str,
                decision: dict[str, Any]) -> Notification:
    """``POST {notificationUri}/update`` with an ``SmPolicyNotification``; the latest
    decision of a policy supersedes any unsent earlier one (coalescing key)."""
    return Notification(
        kind=KIND_UPDATE, uri=f"{notification_uri}/update",
        body={"resourceUri": resource_uri, "smPolicyDecision": decision},
        coalesce_key=f"pcf:{sid}", resource=sid, supi=supi)


def terminate_note(sid: str, supi: str, notification_uri: str, resource_uri: str,
                   cause: str) -> Notification:
    return Notification(
        kind=KIND_TERMINATE, uri=f"{notification_uri}/terminate",
        body={"resourceUri": resource_uri, "cause": cause},
        coalesce_key=f"pcf:{sid}", resource=sid, supi=supi)


def answer_of(effects: Sequence[core.Effect]) -> dict[str, Any]:
    for e in effects:
        if isinstance(e, Answer):
            return e.decision
    raise AssertionError("the core gave no decision to answer with")  # pragma: no cover


def merged(held: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The full decision the SMF holds after receiving ``delta`` (for ``GET``)."""
    merged = dict(held)
    for k, v in delta.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    if "revalidationTime" not in delta:
        merged.pop("revalidationTime", None)
    return merged
