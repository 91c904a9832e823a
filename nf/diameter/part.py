"""The Diameter part of the NF: the listener and the applications it serves.

Its one job is wiring: build the application handlers from the services they translate to
(Gy → the CHF's ``ChargingService``), and run the listener as a background worker of the
process that holds the Diameter connections (``nf.diameter_process``, the ``diameter``
role of ``nf serve``). Nothing here runs in the SBI or OAM processes.
"""

from __future__ import annotations

from collections.abc import Sequence

from quart import Blueprint

from nf.diameter import base
from nf.diameter.peer import Listener, Peers
from nf.diameter.port import AppHandler
from nf.runtime import Role, Runtime, Worker


class DiameterPart:
    """Build with ``DiameterPart(rt, handlers=[...])``; ``peers`` is the live connections
    (for requests the NF sends: RAR, SNR)."""

    name = "diameter"

    def __init__(self, rt: Runtime, *, handlers: Sequence[AppHandler] = ()) -> None:
        self._rt = rt
        self.handlers: list[AppHandler] = list(handlers)
        self.peers = Peers()
        self.listener: Listener | None = None

    def add(self, handler: AppHandler) -> None:
        self.handlers.append(handler)

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
                        metrics=self._rt.metrics)

    async def _serve(self) -> None:
        self.listener = self.make_listener()
        await self.listener.serve(self._rt.stopping)
