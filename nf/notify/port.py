"""What the CHF and PCF may ask of the outbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# A notification URI ``diameter://<peer Origin-Host>/<url-quoted Session-Id>`` is pushed
# over Diameter (Gx RAR, Sy SNR) by the process holding that peer's connection.
DIAMETER_SCHEME = "diameter://"
# The validation context under which the SBI wire models accept such a URI: given by the
# Diameter layer only. A body read from the SBI never has it, so an SMF cannot point a
# notification at a Diameter peer.
FROM_DIAMETER: dict[str, bool] = {"diameter": True}


@dataclass(frozen=True)
class Client:
    """The Diameter client that opened a session (its host network, its Origin-Host, maybe
    behind a DRA) and its Origin-State-Id then. A service keeps it on the session's own
    document, written with it, so that the sessions a client left behind when it restarted
    (RFC 6733 §8.16: the value went up) are found without a map of sessions beside."""

    network: str
    host: str
    state_id: int

    def doc(self) -> dict[str, Any]:
        return {"net": self.network, "host": self.host, "state": self.state_id}


# The field of a session document that holds its ``Client``, and its index's keys (sparse:
# only the documents that have one).
CLIENT_FIELD = "client"
CLIENT_INDEX = [(f"{CLIENT_FIELD}.{k}", 1) for k in ("net", "host", "state")]


def left_behind(network: str, host: str, state_id: int) -> dict[str, Any]:
    """The filter of the sessions ``host`` of ``network`` opened under an Origin-State-Id
    below ``state_id``: it restarted since, so they no longer exist there."""
    return {f"{CLIENT_FIELD}.net": network, f"{CLIENT_FIELD}.host": host,
            f"{CLIENT_FIELD}.state": {"$lt": state_id}}


def notification_target(uri: str, context: object, name: str) -> str:
    """Check a peer-given notification URI: http(s), or ``diameter://`` under the
    ``FROM_DIAMETER`` context. Trailing slashes are dropped."""
    ok: tuple[str, ...] = ("http://", "https://")
    if isinstance(context, dict) and context.get("diameter") is True:
        ok += (DIAMETER_SCHEME,)
    if not uri.startswith(ok):
        raise ValueError(f"{name} must be an http(s) URI")
    return uri.rstrip("/")


@dataclass(frozen=True)
class Notification:
    """One HTTP/2 POST to a peer, made durable before ``enqueue`` returns.

    ``kind`` names the message for metrics and for the gone-handler ("chf.reauthorization",
    "chf.abort", "pcf.update", "pcf.terminate", "slc.notify", ...).
    ``coalesce_key``: an unsent notification with the same key is superseded by this one
    (e.g. "pcf:{smPolicyId}"), so a peer never ends on a stale decision.
    ``resource``: the local resource it concerns (chargingDataRef, smPolicyId, ...), handed
    to the gone-handler when the peer answers 404.
    """

    kind: str
    uri: str
    body: dict[str, Any]
    coalesce_key: str | None = None
    resource: str | None = None
    supi: str | None = None


# Called when a peer answered 404 (the resource is gone there): end it locally.
GoneHandler = Callable[[Notification], Awaitable[None]]
# Called for each send of a notification of its kind with the exact body bytes and the
# time of the send: the headers that sign it, or None when it cannot be signed (then it is
# not sent: a dead letter).
Signer = Callable[[Notification, bytes, datetime], Mapping[str, str] | None]


class Outbox(Protocol):
    async def enqueue(self, items: Sequence[Notification]) -> None:
        """Persist, then wake a sender. Raises ``nf.errors.Congestion`` when full."""
        ...

    def on_gone(self, kind: str, handler: GoneHandler) -> None:
        """Register what to do when a peer answers 404 to a notification of ``kind``."""
        ...

    def sign_with(self, kind: str, signer: Signer) -> None:
        """Sign every send of a notification of ``kind`` (webhooks to a brand)."""
        ...
