"""The policy side of the Diameter part: Gx and Sy on the PCF and the spending-limit
service, and the worker that pushes their RAR and SNR.

Its one job is wiring: build ``GxApp`` (with usage monitoring from the ledger) and
``SyApp`` on the services the SBI uses, add them to the ``DiameterPart``'s listener, keep
the session map's index, and run the ``Pusher`` in the process that holds the connections
(role ``diameter``) only.
"""

from __future__ import annotations

from quart import Blueprint

from nf.diameter.base import PeerInfo
from nf.diameter.gx_app import GxApp
from nf.diameter.part import DiameterPart
from nf.diameter.push import Pusher
from nf.diameter.sessions import Local, SessionMap
from nf.diameter.sy import SyApp
from nf.diameter.umi import UsageMonitor
from nf.ledger.port import Ledger
from nf.notify.outbox import MongoOutbox
from nf.notify.wake import WakeListener
from nf.pcf.service import PcfService
from nf.runtime import Role, Runtime, Worker
from nf.slc.service import SlcService


class DiameterPolicyPart:
    name = "diameter-policy"

    def __init__(self, rt: Runtime, diameter: DiameterPart, *, pcf: PcfService,
                 slc: SlcService, outbox: MongoOutbox, ledger: Ledger) -> None:
        self._rt = rt
        self._monitor = UsageMonitor(ledger, rt.clock)
        self._diameter = diameter
        self._outbox = outbox
        self.sessions = SessionMap(rt.db)
        cfg = rt.settings.diameter
        s = rt.settings.server
        api_root = (s.api_root or f"http://{s.sbi_host}:{s.sbi_port}").rstrip("/")
        local = Local(self.sessions, rt.clock, cfg.origin_host, cfg.origin_realm, api_root)
        gx = GxApp(pcf, local, monitor=self._monitor)
        sy = SyApp(slc, local)
        for app in (gx, sy):  # a client restarted (CER): its sessions of before end
            diameter.add(app)
            diameter.watch(app)
        diameter.watch(self)  # a peer connected: its pushes waiting meanwhile go now

    async def peer_opened(self, peer: PeerInfo) -> None:
        self._outbox.diameter_wake.set()

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        await self.sessions.ensure_indexes()

    def workers(self) -> list[Worker]:
        if self._rt.role != "diameter" or not self._rt.settings.diameter.enabled:
            return []
        return [self._push]

    async def _push(self) -> None:
        cfg = self._rt.settings
        pusher = Pusher(self._outbox, self._diameter.peers, self.sessions, self._rt.stopping,
                        self._rt.clock, origin_host=cfg.diameter.origin_host,
                        origin_realm=cfg.diameter.origin_realm,
                        timeout_s=cfg.notify.request_timeout_s,
                        concurrency=cfg.notify.concurrency,
                        poll_interval_s=cfg.diameter.push_poll_interval_s,
                        # Another NF instance holding the peer has claimed it long before.
                        stranded_after_s=cfg.notify.lease_s, monitor=self._monitor)
        # The other processes of this ``nf serve`` wake it when they enqueue a push.
        with WakeListener(cfg.diameter.wake_socket, self._outbox.diameter_wake,
                          self._rt.metrics):
            await pusher.run()
