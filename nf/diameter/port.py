"""What the Diameter applications and the NF's pushes see of the connections: the handler
an application implements, and the error of a peer that cannot be reached."""

from __future__ import annotations

from typing import Protocol

from nf.diameter.base import PeerInfo
from nf.diameter.codec import Message
from nf.errors import NfError


class AppHandler(Protocol):
    """One Diameter application (Gy, Gx, Sy): turns a request into its answer."""

    app_id: int

    async def handle(self, req: Message, peer: PeerInfo) -> Message: ...


class PeerUnavailable(NfError):
    """No open connection to that peer, or it did not answer in time."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 503, "NF_SERVICE_FAILURE", "Diameter peer unavailable",
                         retry_after_s=1)
