"""Fraud protection's part of the NF: the cases API (OAM), indexes and the EDR reader.

Every OAM process (every process with ``fraud.reader: any``) runs the reader worker; the
lease on ``fraud_cursor`` lets one of them read at a time (the others only try to take the
lease each ``lease_s / 3``). ``fraud.enabled: false`` leaves the rules off (no reader); the
cases API still answers.
"""

from __future__ import annotations

import contextlib
import logging

from quart import Blueprint

from nf import logs
from nf.edr.port import EdrSink
from nf.errors import NfError
from nf.fraud.port import FraudLedger
from nf.fraud.service import FraudService
from nf.notify.port import Outbox
from nf.runtime import Role, Runtime, Worker

log = logging.getLogger("nf.fraud")
TICK_S = 1.0  # waiting rules and owed mitigations are looked at this often
OPEN_COUNT_S = 15.0  # open cases are counted (a metric) this often


class FraudPart:
    name = "fraud"

    def __init__(self, rt: Runtime, *, ledger: FraudLedger, outbox: Outbox,
                 edrs: EdrSink) -> None:
        self._rt = rt
        self.service = FraudService(rt, ledger=ledger, outbox=outbox, edrs=edrs)
        self._oam = False

    def blueprints(self, role: Role) -> list[Blueprint]:
        if role != "oam":
            return []
        self._oam = True  # the app factory asks before its lifespan starts the workers
        from nf.fraud.http import fraud_blueprint

        return [fraud_blueprint(self._rt, self.service)]

    async def ensure_indexes(self) -> None:
        await self.service.store.ensure_indexes()

    def workers(self) -> list[Worker]:
        cfg = self._rt.settings.fraud
        if not cfg.enabled or (cfg.reader == "oam" and not self._oam):
            return []
        return [self.run]

    async def run(self) -> None:
        rt, svc, cfg = self._rt, self.service, self._rt.settings.fraud
        last_tick = 0.0
        last_count = -OPEN_COUNT_S
        try:
            while not rt.stopping.is_set():
                full = False
                try:
                    n = await svc.round()
                    full = n >= cfg.batch_max
                    mono = rt.clock.monotonic()
                    if mono - last_tick >= TICK_S:
                        last_tick = mono
                        await svc.tick()
                        if svc.leader:
                            await svc.finish_owed()
                        if svc.leader and mono - last_count >= OPEN_COUNT_S:
                            last_count = mono
                            svc.metrics.count_open(await svc.store.open_by_brand())
                except NfError as e:
                    logs.log(log, logging.WARNING, "fraud round failed", cause=e.cause,
                             detail=e.detail)
                if full:
                    continue
                await rt.pause(cfg.poll_interval_s if svc.leader else cfg.lease_s / 3)
        finally:
            with contextlib.suppress(NfError):  # else the lease expires by itself
                await svc.stop()
