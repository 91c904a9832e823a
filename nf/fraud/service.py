"""The fraud shell: reads stored EDRs, runs the rules, opens cases and applies or lifts the
mitigation (through the ledger, whose changes reach the PCF and CHF as counter changes,
delivered durably by the ledger's effects drain).

One process reads at a time (a lease on ``fraud_cursor``); the reader walks the ``edrs``
collection in ``(time, _id)`` order from its checkpoint, and rescans the last
``late_window_s`` for records stored late. Each subscriber's state remembers the EDR ids it
applied, so a record read twice (a rescan, a new reader after a crash) changes nothing;
cases have deterministic ids, so a detection repeated after a crash is the same case. A
mitigation is written into its case as owed before it is applied and marked done after,
so a crash in between is finished by the next round.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from nf import logs
from nf.clock import iso_z, utc
from nf.edr.port import EdrSink
from nf.edr.records import fraud_record
from nf.errors import Conflict, NfError, NotFound
from nf.fraud import rules
from nf.fraud.cases import CASE_KIND, case_json, opt_dt, party_of
from nf.fraud.metrics import FraudMetrics
from nf.fraud.mitigation import MITIGATIONS, Mitigations
from nf.fraud.port import FraudLedger
from nf.fraud.rules import Context, Detection, SubState, Tick
from nf.fraud.state import event_of
from nf.fraud.store import FraudStore
from nf.notify.port import Notification, Outbox
from nf.runtime import Runtime
from nf.security.webhooks import SIGNATURE_HEADER, sign
from nf.settings.fraud import FraudSettings
from nf.store.mongo import Doc

log = logging.getLogger("nf.fraud")

PLAN_CACHE = 50_000  # subscribers' plan classes remembered (LRU)
STATE_ATTEMPTS = 5  # reads and writes of a batch's states when a resolution races them


class FraudService:
    def __init__(self, rt: Runtime, *, ledger: FraudLedger, outbox: Outbox, edrs: EdrSink,
                 store: FraudStore | None = None) -> None:
        self.rt = rt
        self.cfg: FraudSettings = rt.settings.fraud
        self.ledger = ledger
        self.outbox = outbox
        self.edrs = edrs
        self.store = store or FraudStore(rt.db)
        self.metrics = FraudMetrics(rt)
        self.mitigations = Mitigations(ledger=ledger, store=self.store, cfg=self.cfg,
                                       metrics=self.metrics, edrs=edrs)
        self.owner = f"{rt.settings.instance_id}:{uuid.uuid4().hex[:12]}"
        self._seen: dict[Any, datetime] = {}  # EDR ids read within the late window
        self._leader = False
        self._last_late_scan = 0.0
        self._plans: OrderedDict[str, str | None] = OrderedDict()
        self._ctx: dict[str, Context] = {}
        self._lease_until: datetime | None = None
        self._cursor: Doc = {}
        self._behind = True  # the last round read a full batch: more EDRs are waiting
        windows = [self.cfg.session_stale_s, 86_400]
        for b in [None, *self.cfg.brands]:
            r = self.cfg.rules_for(b)
            windows += [r.usage_velocity.window_s, r.purchase_velocity.window_s,
                        r.orphan_session.grace_s]
        self.state_ttl = timedelta(seconds=max(windows) + 3600)
        outbox.sign_with(CASE_KIND, self._sign)

    def _sign(self, n: Notification, body: bytes, now: datetime) -> Mapping[str, str] | None:
        """The signature of a case webhook, with the secret its brand has at send time."""
        brand = n.body.get("brand")
        secret = self.cfg.webhook_secret(brand if isinstance(brand, str) else None)
        if secret is None:
            return None
        return {SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body)}

    def ctx(self, brand: str | None, plan_class: str | None = None) -> Context:
        key = brand or ""
        got = self._ctx.get(key)
        if got is None:
            c = self.cfg
            got = Context(rules=c.rules_for(brand), cooldown_s=c.cooldown_s,
                          repeat_after_s=c.repeat_after_s, session_stale_s=c.session_stale_s,
                          sessions_max=c.sessions_max, late_window_s=c.late_window_s,
                          mcc_countries=c.mcc_countries)
            if len(self._ctx) < 1000:
                self._ctx[key] = got
        return got if plan_class is None else replace(got, plan_class=plan_class)

    # -- reading ----------------------------------------------------------------------------

    async def round(self) -> int:
        """One round of the reader: take/renew the lease, read what is new, act. Returns
        how many EDRs were read (0 when another process holds the lease)."""
        now = self.rt.clock.now()
        cur = await self._lease(now)
        if cur is None:
            if self._leader:
                logs.log(log, logging.INFO, "fraud reader lease lost", owner=self.owner)
            self._leader = False
            return 0
        late = timedelta(seconds=self.cfg.late_window_s)
        hi_t = opt_dt(cur.get("hi_t"))
        hi_id = cur.get("hi_id")
        if not self._leader:
            # A new reader (start or takeover): read again from the late window before the
            # checkpoint; the states' applied ids make it harmless.
            self._leader = True
            self._seen.clear()
            logs.log(log, logging.INFO, "fraud reader lease taken", owner=self.owner,
                     checkpoint=iso_z(hi_t) if hi_t else None)
            if hi_t is not None:
                hi_t, hi_id = hi_t - late, None
        main = await self.store.edrs_after(hi_t, hi_id, self.cfg.batch_max)
        self._behind = len(main) >= self.cfg.batch_max
        docs = main
        mono = self.rt.clock.monotonic()
        if hi_t is not None and late and \
                mono - self._last_late_scan >= self.cfg.late_scan_interval_s:
            self._last_late_scan = mono
            docs = await self._late(hi_t, late) + main
        fresh = [d for d in docs if d["_id"] not in self._seen]
        n = await self.apply(fresh, now)
        for d in fresh:
            self._seen[d["_id"]] = utc(d["time"])
        if main:
            hi_t, hi_id = utc(main[-1]["time"]), main[-1]["_id"]
            self.metrics.lag.set(max(0.0, (now - hi_t).total_seconds()))
            if not await self.store.checkpoint(self.owner, hi_t, hi_id):
                self._leader = False  # the lease went to another reader meanwhile
            self._cursor = {"hi_t": hi_t, "hi_id": hi_id}
        if hi_t is not None:
            keep = hi_t - late
            self._seen = {k: t for k, t in self._seen.items() if t >= keep}
        return n

    async def _lease(self, now: datetime) -> Doc | None:
        """The cursor if this process holds the lease. The lease is renewed (one write)
        once half of it has gone; in between the checkpoint kept in memory is used."""
        half = timedelta(seconds=self.cfg.lease_s / 2)
        if self._leader and self._lease_until is not None and now < self._lease_until - half:
            return self._cursor
        cur = await self.store.lease(self.owner, now, self.cfg.lease_s)
        if cur is None:
            self._lease_until = None
            return None
        self._lease_until = now + timedelta(seconds=self.cfg.lease_s)
        self._cursor = {"hi_t": cur.get("hi_t"), "hi_id": cur.get("hi_id")}
        return cur

    async def _late(self, hi_t: datetime, late: timedelta) -> list[Doc]:
        ids = await self.store.edr_ids_between(hi_t - late, hi_t, self.cfg.batch_max * 4)
        missing = [i for i, _ in ids if i not in self._seen]
        return await self.store.edrs_by_id(missing) if missing else []

    @property
    def leader(self) -> bool:
        return self._leader

    async def stop(self) -> None:
        if self._leader:
            await self.store.release(self.owner)
            self._leader = False

    async def _plan_class(self, supi: str, brand: str | None, now: datetime) -> str | None:
        if supi in self._plans:
            self._plans.move_to_end(supi)
            offer = self._plans[supi]
        else:
            got = await self.ledger.wallet(supi, now)
            offer = got[1].plan.offer_id if got and got[1].plan else None
            if got and offer is None and got[0].family is not None:
                offer = got[0].family.offer_id
            self._plans[supi] = offer
            if len(self._plans) > PLAN_CACHE:
                self._plans.popitem(last=False)
        if offer is None:
            return None
        return self.cfg.rules_for(brand).usage_velocity.plan_classes.get(offer)

    async def apply(self, docs: Sequence[Doc], now: datetime) -> int:
        """Run the rules over EDR documents (in order) and act on what fires."""
        events = [e for e in (event_of(d) for d in docs) if e is not None]
        self.metrics.edrs.inc(len(docs))
        if not events:
            return len(docs)
        todo = events
        detections: list[Detection] = []
        for _ in range(STATE_ATTEMPTS):
            supis = list(dict.fromkeys(e.supi for e in todo))
            states = await self.store.load_states(supis)
            before = {s: st.version for s, st in states.items()}
            fired_by: dict[str, list[Detection]] = {}
            for e in todo:
                st = states.get(e.supi) or SubState(supi=e.supi)
                ctx = self.ctx(st.brand or e.brand)
                if rules.needs_plan_class(st, e, ctx):
                    ctx = replace(ctx, plan_class=await self._plan_class(e.supi, e.brand,
                                                                         now))
                st, fired = rules.evaluate(st, e, now, ctx)
                states[e.supi] = st
                fired_by.setdefault(e.supi, []).extend(fired)
            lost = set(await self._save(states, before, now))
            detections += [d for s, ds in fired_by.items() if s not in lost for d in ds]
            # A resolution wrote a state meanwhile: read it again and re-apply (the
            # applied ids keep what was stored from being applied twice).
            todo = [e for e in todo if e.supi in lost]
            if not todo:
                break
        if todo:
            logs.log(log, logging.ERROR, "fraud state writes kept losing races",
                     subscribers=len({e.supi for e in todo}))
        await self.detected(detections, now)
        return len(docs)

    async def _save(self, states: dict[str, SubState], before: dict[str, int],
                    now: datetime) -> list[str]:
        items = []
        for supi, st in states.items():
            st = replace(st, version=before.get(supi, 0))
            due = rules.due_at(st, self.ctx(st.brand))
            items.append((st, now + self.state_ttl, due))
        return await self.store.save_states(items)

    def stream_time(self) -> datetime:
        """The time up to which the EDRs have been read: now once the reader has caught
        up, else the time of the last EDR read (a waiting rule does not run ahead of the
        records still to be read: the other side of a PDU session may be among them)."""
        now = self.rt.clock.now()
        hi_t = opt_dt(self._cursor.get("hi_t"))
        return min(now, hi_t) if self._behind and hi_t is not None else now

    async def tick(self, limit: int = 500) -> int:
        """Look again at subscribers whose waiting rules are due (orphan sessions, ending
        PDU sessions)."""
        if not self._leader:
            return 0
        now, at = self.rt.clock.now(), self.stream_time()
        due = await self.store.due_states(at, limit)
        if not due:
            return 0
        detections: list[Detection] = []
        states: dict[str, SubState] = {}
        for st in due:
            new, fired = rules.evaluate(st, Tick(), at, self.ctx(st.brand))
            states[st.supi] = new
            detections += fired
        lost = set(await self._save(states, {s.supi: s.version for s in due}, now))
        detections = [d for d in detections if d.supi not in lost]  # next tick looks again
        await self.detected(detections, now)
        return len(due)

    # -- acting -----------------------------------------------------------------------------

    async def detected(self, detections: Sequence[Detection], now: datetime) -> None:
        if not detections:
            return
        cases = []
        for d in detections:
            action = self.ctx(d.brand).rules.action(d.rule)
            brand = d.brand or "unknown"
            self.metrics.detections.labels(d.rule, brand).inc()
            await self.edrs.write(fraud_record(
                event="detected", time=now, party=party_of(d), rule=d.rule,
                case_id=d.case_id if action != "record" else None, action=action,
                detail=d.evidence, record_id=f"fraud:{d.case_id}:detected"))
            logs.log(log, logging.WARNING, "fraud detected", rule=d.rule, supi=d.supi,
                     brand=d.brand, action=action, case=d.case_id)
            if action == "record":
                self.metrics.actions.labels(d.rule, brand, "record").inc()
                continue
            cases.append({
                "_id": d.case_id, "brand": d.brand, "supi": d.supi, "rule": d.rule,
                "status": "open", "action": action, "trigger": d.trigger,
                "detected_at": d.at, "opened_at": now, "updated_at": now,
                "evidence": d.evidence, "applied": None,
                "action_state": "owed" if action in MITIGATIONS else "done",
                "audit": [{"at": now, "who": "fraud", "what": "opened",
                           "detail": {"action": action}}]})
        new = set(await self.store.insert_cases(cases))
        for c in cases:
            if c["_id"] not in new:
                continue
            await self._notify_brand(c)
            if c["action"] in MITIGATIONS:
                await self.mitigate(c, now)
            else:
                self.metrics.actions.labels(c["rule"], c["brand"] or "unknown", "case").inc()

    async def _notify_brand(self, case: Doc) -> None:
        url = self.cfg.webhook(case.get("brand"))
        if url is None:
            return
        try:
            await self.outbox.enqueue([Notification(
                CASE_KIND, url, case_json(case, evidence=True),
                coalesce_key=f"fraud:{case['_id']}", resource=str(case["_id"]),
                supi=case["supi"])])
        except NfError as e:  # the case stands; the brand sees it through the API
            logs.log(log, logging.ERROR, "fraud webhook not queued", case=case["_id"],
                     error=e.detail)

    async def mitigate(self, case: Doc, now: datetime) -> None:
        await self.mitigations.apply(case, now)

    async def lift(self, case: Doc, now: datetime) -> None:
        await self.mitigations.lift(case, now)

    async def finish_owed(self) -> int:
        return await self.mitigations.finish_owed(self.rt.clock.now())

    async def resolve(self, case_id: str, resolution: str, who: dict[str, Any],
                      note: str | None) -> Doc:
        now = self.rt.clock.now()
        fp = resolution == "false_positive"
        sets: Doc = {"status": resolution, "resolution": resolution, "resolved_at": now,
                     "updated_at": now, "resolved_by": who,
                     "exp": now + timedelta(days=self.cfg.case_retention_days)}
        if fp:
            sets["lift_state"] = "owed"
        got = await self.store.set_case(case_id, {"status": "open"}, sets, {
            "at": now, "who": who, "what": f"resolved {resolution}",
            "detail": {"note": note} if note else {}})
        if got is None:
            existing = await self.store.case(case_id)
            if existing is None:
                raise NotFound(f"no fraud case {case_id}", cause="CASE_NOT_FOUND")
            raise Conflict(f"fraud case {case_id} is already {existing['status']}",
                           cause="CASE_ALREADY_RESOLVED")
        brand = got.get("brand") or "unknown"
        self.metrics.resolutions.labels(got["rule"], brand, resolution).inc()
        await self.store.update_state(
            got["supi"], lambda st: rules.resolved(st, got["rule"], case_id, now, fp,
                                                   self.cfg.cooldown_s),
            now, self.state_ttl)
        await self.edrs.write(fraud_record(
            event="resolved", time=now, party=party_of(got), rule=got["rule"],
            case_id=case_id, action=got.get("applied"),
            detail={"resolution": resolution, "by": who, "note": note},
            record_id=f"fraud:{case_id}:resolved"))
        if fp and got.get("action_state") == "owed":
            await self.mitigate(got, now)  # finish what was owed before lifting it
            got = await self.store.case(case_id) or got
        if fp:
            await self.lift(got, now)
        final = await self.store.case(case_id)
        assert final is not None
        return final
