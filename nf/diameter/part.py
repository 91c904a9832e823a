"""The Diameter part of the NF: the listener and the applications it serves.

Its one job is wiring: build the application handlers from the services they translate to
(Gy → the CHF's ``ChargingService``), and run the listener as a background worker of the
process that holds the Diameter connections (``nf.diameter_process``, the ``diameter``
role of ``nf serve``). Nothing here runs in the SBI or OAM processes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from quart import Blueprint

from nf.diameter import base
from nf.diameter.base import PeerInfo
from nf.diameter.peer import Listener, Peers
from nf.diameter.port import AppHandler
from nf.runtime import Role, Runtime, Worker

log = logging.getLogger("nf.diameter")


class PeerWatcher(Protocol):
    """An application that also hears of each peer passing CER (a handler may be one):
    a peer whose Origin-State-Id went up restarted, and its sessions are gone there."""

    async def peer_opened(self, peer: PeerInfo) -> None: ...


class DiameterPart:
    """Build with ``DiameterPart(rt, handlers=[...])``; ``peers`` is the live connections
    (for requests the NF sends: RAR, SNR)."""

    name = "diameter"

    def __init__(self, rt: Runtime, *, handlers: Sequence[AppHandler] = ()) -> None:
        self._rt = rt
        self.handlers: list[AppHandler] = list(handlers)
        self.watchers: list[PeerWatcher] = []
        self.peers = Peers()
        self.listener: Listener | None = None

    def add(self, handler: AppHandler) -> None:
        self.handlers.append(handler)

    def watch(self, watcher: PeerWatcher) -> None:
        """Tell ``watcher`` of every peer that passes CER here."""
        self.watchers.append(watcher)

    async def peer_opened(self, peer: PeerInfo) -> None:
        for w in self.watchers:
            try:
                await w.peer_opened(peer)
            except Exception:  # the connection goes on; its next request tries again
                log.exception("diameter peer watcher failed",
                              extra={"fields": {"peer": peer.origin_host}})

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        return None

    def workers(self) -> list[Worker]:
        cfg = self._rt.settings.diameter
        if self._rt.role != "diameter" or not cfg.enabled:
            return []
        return [self._serve]

    def make_listener(self) -> Listener:
        cfg = self._rt.settings.diameter
        allowed = base.allowed_from({k: (v.realms, v.peers) for k, v in cfg.networks.items()})
        return Listener(cfg, allowed, self.handlers, self._rt.clock, peers=self.peers,
                        metrics=self._rt.metrics, on_open=self.peer_opened)

    async def _serve(self) -> None:
        self.listener = self.make_listener()
        await self.listener.serve(self._rt.stopping)
