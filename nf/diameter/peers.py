"""The open Diameter connections of this process, by the peer's Origin-Host.

Its one job is the lookup the NF's own requests need (a Gx RAR, a Gy RAR, an Sy SNR go
to the connection of the peer that holds the session) and which peers are connected; the
connections themselves live in ``nf.diameter.peer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nf.diameter.base import PeerInfo, State
from nf.diameter.codec import Message
from nf.diameter.port import PeerUnavailable

if TYPE_CHECKING:
    from nf.diameter.peer import _Conn


class Peers:
    """The open connections of this process, by the peer's Origin-Host."""

    def __init__(self) -> None:
        self._by_host: dict[str, _Conn] = {}

    def connected(self, origin_host: str) -> bool:
        c = self._by_host.get(origin_host)
        return c is not None and c.core.state is State.OPEN

    def open_peers(self) -> list[PeerInfo]:
        """The peers with an open connection here (capabilities exchanged)."""
        return [c.core.peer for c in self._by_host.values()
                if c.core.peer is not None and c.core.state is State.OPEN]

    async def request(self, origin_host: str, req: Message, timeout_s: float) -> Message:
        """Send ``req`` (its Hop-by-Hop and End-to-End ids are set here) to the peer and
        return its answer; ``PeerUnavailable`` if there is no open connection to it or no
        answer within ``timeout_s``."""
        c = self._by_host.get(origin_host)
        if c is None or c.core.state is not State.OPEN:
            raise PeerUnavailable(f"no open Diameter connection to {origin_host}")
        return await c.request(req, timeout_s)

    def _add(self, host: str, conn: _Conn) -> None:
        old = self._by_host.get(host)
        self._by_host[host] = conn
        if old is not None and old is not conn:
            old.close_soon()  # the peer reconnected: the newest connection wins

    def _remove(self, host: str, conn: _Conn) -> None:
        if self._by_host.get(host) is conn:
            del self._by_host[host]

    def all(self) -> list[_Conn]:
        return list(self._by_host.values())
