"""What the CHF and PCF may ask of the outbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


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
