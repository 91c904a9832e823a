"""A fraud case's mitigation, applied and lifted through the ledger: a fraud speed
(throttle) or a suspension. Each step is idempotent and recorded on the case (owed, then
done), so what a crash interrupted is finished by the next round (``finish_owed``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nf.edr.port import EdrSink
from nf.edr.records import fraud_record
from nf.errors import NotFound
from nf.fraud.cases import party_of
from nf.fraud.metrics import FraudMetrics
from nf.fraud.port import FraudLedger
from nf.fraud.store import FraudStore
from nf.ledger.port import Speed, SubscriberStatus
from nf.settings.fraud import FraudSettings
from nf.store.mongo import Doc

MITIGATIONS = ("throttle", "suspend")
OWED_AFTER_S = 5.0  # an owed mitigation older than this is finished by the reader


class Mitigations:
    def __init__(self, *, ledger: FraudLedger, store: FraudStore, cfg: FraudSettings,
                 metrics: FraudMetrics, edrs: EdrSink) -> None:
        self._ledger = ledger
        self._store = store
        self._cfg = cfg
        self._metrics = metrics
        self._edrs = edrs

    async def apply(self, case: Doc, now: datetime) -> None:
        """Apply the case's throttle or suspension (idempotent), then mark it done. The
        ledger's counter changes reach the PCF and the CHF as the write's durable effects
        (``nf.ledger.effects``)."""
        supi, action, brand = case["supi"], case["action"], case.get("brand")
        applied: str | None = None
        try:
            if action == "throttle":
                up, down = self._cfg.throttle_kbps(brand)
                await self._ledger.set_fraud_speed(supi, Speed(up, down), now)
                applied = "throttle"
            else:
                view = await self._ledger.subscriber(supi, now)
                if view is not None and view.status is SubscriberStatus.ACTIVE:
                    await self._ledger.set_status(supi, SubscriberStatus.SUSPENDED, now)
                    applied = "suspend"
                elif view is not None and case.get("applied") == "suspend":
                    applied = "suspend"  # applied before a crash
        except NotFound:
            pass
        await self._store.set_case(case["_id"], {}, {
            "applied": applied, "action_state": "done", "updated_at": now},
            {"at": now, "who": "fraud", "what": f"applied {applied}" if applied
             else "nothing to apply", "detail": {}})
        self._metrics.actions.labels(case["rule"], brand or "unknown", action).inc()
        await self._edrs.write(fraud_record(
            event="action", time=now, party=party_of(case), rule=case["rule"],
            case_id=case["_id"], action=applied or "none",
            record_id=f"fraud:{case['_id']}:action"))

    async def lift(self, case: Doc, now: datetime) -> None:
        """Undo what a case applied, unless another open case holds the same mitigation
        (the counter changes leave as the ledger write's effects, as in ``apply``)."""
        supi, applied = case["supi"], case.get("applied")
        lifted = None
        try:
            if applied == "suspend" and not await self._store.open_with(
                    supi, "suspend", case["_id"]):
                view = await self._ledger.subscriber(supi, now)
                if view is not None and view.status is SubscriberStatus.SUSPENDED:
                    await self._ledger.set_status(supi, SubscriberStatus.ACTIVE, now)
                    lifted = "suspend"
                    # Reinstating lifts every fraud throttle: keep another case's.
                    if await self._store.open_with(supi, "throttle", case["_id"]):
                        up, down = self._cfg.throttle_kbps(case.get("brand"))
                        await self._ledger.set_fraud_speed(supi, Speed(up, down), now)
            elif applied == "throttle" and not await self._store.open_with(
                    supi, "throttle", case["_id"]):
                await self._ledger.set_fraud_speed(supi, None, now)
                lifted = "throttle"
        except NotFound:
            pass
        await self._store.set_case(case["_id"], {}, {"lift_state": "done", "updated_at": now},
                                  {"at": now, "who": "fraud",
                                   "what": f"lifted {lifted}" if lifted else "nothing to lift",
                                   "detail": {}})
        if lifted:
            await self._edrs.write(fraud_record(
                event="lifted", time=now, party=party_of(case), rule=case["rule"],
                case_id=case["_id"], action=lifted, record_id=f"fraud:{case['_id']}:lifted"))

    async def finish_owed(self, now: datetime) -> int:
        """Apply or lift mitigations left owed by a crash."""
        owed = await self._store.owed(now - timedelta(seconds=OWED_AFTER_S), 100)
        for c in owed:
            if c.get("action_state") == "owed":
                await self.apply(c, now)
            if c.get("lift_state") == "owed":
                await self.lift(c, now)
        return len(owed)
