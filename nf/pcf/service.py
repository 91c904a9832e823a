"""The PCF shell: loads state, calls the core, persists, pushes through the outbox.

The real-time path (``counters_changed``) is kept short on purpose: one indexed query for
all affected policies, a fresh read of each subscriber from the ledger (so a change that
arrives late can never install an older speed), a compare-and-set per policy (which also
marks the decision as owed to the SMF), and one outbox insert for every notification of
the batch. Off that path: settling each push on its version (re-sending the newest decision
where a concurrent one overtook it in the outbox) and writing the EDRs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nf import logs
from nf.clock import Clock
from nf.config import Settings
from nf.edr.port import EdrSink
from nf.edr.records import Party, SpeedRecord, policy_record
from nf.errors import BadRequest, Forbidden, NfError, NotFound
from nf.ledger import roaming
from nf.ledger.port import CounterChange, Ledger, Speed
from nf.notify.port import DIAMETER_SCHEME, Notification, Outbox
from nf.pcf import core
from nf.pcf.core import (
    Answer,
    ContextUpdated,
    Created,
    DefaultQos,
    Judgement,
    PolicyRejected,
    PushTerminate,
    PushUpdate,
    Record,
    Released,
    Subscriber,
    SubscriberChanged,
    Verdict,
)
from nf.pcf.store import PolicyStore, StoredPolicy
from nf.pcf.wire import SmPolicyContextData, SmPolicyUpdateContextData, raw

log = logging.getLogger("nf.pcf")

API_PREFIX = "/npcf-smpolicycontrol/v1"
KIND_UPDATE = "pcf.update"
KIND_TERMINATE = "pcf.terminate"
_CAS_ATTEMPTS = 5
# The records of a re-decision that changed a session's speed (``core.speed_event_kind``).
SPEED_EVENTS = frozenset({"throttled", "restored", "speed-changed"})
# A decision stored but not yet confirmed in the outbox for this long is re-sent.
OWED_GRACE_S = 5.0


def policy_id(supi: str, pdu_session_id: int, notification_uri: str) -> str:
    """The association's id: the same for a repeated create of one PDU session."""
    key = f"{supi}\x00{pdu_session_id}\x00{notification_uri}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def policy_not_found(sm_policy_id: str) -> NotFound:
    return NotFound(f"no SM policy association {sm_policy_id}", cause="CONTEXT_NOT_FOUND")


def rejection(e: PolicyRejected) -> NfError:
    """The TS 29.512 application errors for a refused association."""
    if e.verdict is Verdict.DENY_UNKNOWN:
        return BadRequest(e.detail, cause="USER_UNKNOWN")
    return Forbidden(e.detail, cause="POLICY_CONTEXT_DENIED")


def _speed_record(s: Speed | None) -> SpeedRecord | None:
    return None if s is None else SpeedRecord(s.uplink_kbps, s.downlink_kbps)


@dataclass(frozen=True)
class _Outcome:
    """What re-evaluating one policy produced, to be sent and recorded."""

    notifications: list[Notification]
    records: list[dict[str, Any]]
    pushed: dict[str, int]  # smPolicyId -> the decision version sent


class PcfService:
    """Npcf_SMPolicyControl operations and the built-in PCF's ``CounterListener``."""

    def __init__(self, settings: Settings, clock: Clock, store: PolicyStore, ledger: Ledger,
                 outbox: Outbox, edr: EdrSink,
                 speed_changed: Callable[[str], None] | None = None) -> None:
        self._settings = settings
        # Told the event of every re-decision that changed a session's speed (a metric).
        self._speed_changed = speed_changed
        self._clock = clock
        self._store = store
        self._ledger = ledger
        self._outbox = outbox
        self._edr = edr
        self._qos = DefaultQos(settings.pcf.default_5qi, settings.pcf.default_arp_priority)
        outbox.on_gone(KIND_UPDATE, self._gone)
        outbox.on_gone(KIND_TERMINATE, self._gone_quietly)

    # -- reading the subscriber ----------------------------------------------------------

    async def _subscriber(self, supi: str, plmns: Sequence[str | None], now: datetime
                          ) -> Subscriber | None:
        view = await self._ledger.subscriber(supi, now)
        if view is None:
            return None
        home = roaming.home_plmns(self._settings, view.home_network, view.home_plmn)
        sub = Subscriber(view=view, home_plmns=home)
        if not any(sub.roaming_at(p) for p in plmns):
            return sub
        # Roaming: which zones do the subscriber's valid passes with quota left cover.
        balance = await self._ledger.balance(supi, now)
        zones = roaming.pass_zones(balance.buckets if balance is not None else (), now)
        return Subscriber(view=view, home_plmns=home, pass_zones=zones)

    # -- service operations --------------------------------------------------------------

    async def owner(self, sm_policy_id: str) -> str | None:
        """The host network that created the association (``None``: none recorded)."""
        doc = await self._store.get_any(sm_policy_id)
        owner = doc.get("hostNetwork") if doc is not None else None
        return str(owner) if owner is not None else None

    async def create(self, ctx: SmPolicyContextData, api_root: str,
                     host_network: str | None = None) -> tuple[str, dict[str, Any]]:
        """``host_network``: the authenticated caller's (else taken from the body)."""
        now = self._clock.now()
        serving = ctx.serving_network.plmn if ctx.serving_network else None
        logs.bind(supi=ctx.supi)
        # One id per PDU session of an SMF: a repeated create replaces the association it
        # made (same id, a higher version) instead of leaving a second one behind.
        sm_policy_id = policy_id(ctx.supi, ctx.pdu_session_id, ctx.notification_uri)
        logs.bind(smPolicyId=sm_policy_id)
        sub = await self._subscriber(ctx.supi, [serving], now)
        judgement = core.judge(sub, serving, now)
        event = Created(sm_policy_id, ctx.supi, ctx.notification_uri, serving, judgement,
                        version=max(1, int(now.timestamp() * 1000)))
        try:
            state, effects = core.decide(None, event, now, self._qos)
        except PolicyRejected as e:
            raise rejection(e) from None
        assert state is not None
        decision = _answer(effects)
        if ctx.supp_feat is not None:
            # Features negotiated: none of the optional TS 29.512 features is supported.
            decision["suppFeat"] = "0"
        resource_uri = f"{api_root.rstrip('/')}{API_PREFIX}/sm-policies/{sm_policy_id}"
        stored = StoredPolicy(
            state=state, context=raw(ctx), resource_uri=resource_uri,
            brand=sub.view.brand if sub else None, gpsi=ctx.gpsi or (
                sub.view.gpsi if sub else None),
            host_network=host_network or self._host_network(serving, sub),
            decision=decision)
        await self._store.insert(stored, now)
        await self._records(stored, effects, now)
        return resource_uri, await self._recheck_new(stored, decision, serving)

    async def _recheck_new(self, p: StoredPolicy, decision: dict[str, Any],
                           serving: str | None) -> dict[str, Any]:
        """Close the gap between reading the ledger and storing the new policy: a counter
        change in between found no policy to push to. Read the ledger again now that the
        policy is visible; if the speed moved, answer the newer decision at once."""
        now = self._clock.now()
        sub = await self._subscriber(p.state.supi, [serving], now)
        new, effects = core.decide(p.state, SubscriberChanged(core.judge(sub, serving, now)),
                                   now, self._qos)
        if new is None or new == p.state:
            return decision
        if not new.active:
            if await self._store.remove(p.state.sm_policy_id, p.state.version):
                await self._records(p, effects, now, version=new.version)
                raise Forbidden("the subscriber's status changed while the association was "
                                "made", cause="POLICY_CONTEXT_DENIED")
            return decision  # someone else re-decided it meanwhile and pushes the result
        full = core.session_decision(new, self._qos, initial=True, now=now)
        if "suppFeat" in decision:
            full["suppFeat"] = decision["suppFeat"]
        if not await self._store.replace_state(new, p.state.version, full, now):
            return decision
        await self._records(p, effects, now, version=new.version)
        return full

    async def get(self, sm_policy_id: str) -> dict[str, Any]:
        p = await self._store.get(sm_policy_id)
        if p is None:
            raise policy_not_found(sm_policy_id)
        return {"context": p.context, "policy": p.decision}

    async def update(self, sm_policy_id: str, upd: SmPolicyUpdateContextData
                     ) -> dict[str, Any]:
        logs.bind(smPolicyId=sm_policy_id)
        for _ in range(_CAS_ATTEMPTS):
            p = await self._store.get(sm_policy_id)
            if p is None:
                raise policy_not_found(sm_policy_id)
            now = self._clock.now()
            serving = upd.serving_network.plmn if upd.serving_network \
                else p.state.serving_plmn
            sub = await self._subscriber(p.state.supi, [serving], now)
            judgement = core.judge(sub, serving, now)
            new, effects = core.decide(p.state, ContextUpdated(serving, judgement), now,
                                       self._qos)
            assert new is not None
            decision = _answer(effects)
            if not new.active:
                if not await self._store.remove(sm_policy_id, p.state.version):
                    continue
            elif not await self._store.replace_state(
                    new, p.state.version, _merge(p.decision, decision), now):
                continue
            await self._records(p, effects, now, serving=serving, version=new.version)
            return decision
        raise NfError("the SM policy changed concurrently too often; retry",
                      status=503, cause="NF_CONGESTION", title="Service unavailable",
                      retry_after_s=1)

    async def delete(self, sm_policy_id: str) -> None:
        logs.bind(smPolicyId=sm_policy_id)
        p = await self._store.take(sm_policy_id)
        if p is None:
            # The SMF deleting what the PCF terminated: the answer to our terminate.
            doc = await self._store.get_any(sm_policy_id)
            if doc is not None and doc.get("ended") and \
                    await self._store.remove(sm_policy_id):
                return
            raise policy_not_found(sm_policy_id)
        now = self._clock.now()
        _new, effects = core.decide(p.state, Released(), now, self._qos)
        await self._records(p, effects, now)

    # -- real-time control ---------------------------------------------------------------

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        """Re-decide every active policy of the subscribers concerned; push what changed.

        The changes come from the ledger's pending effects (``nf.ledger.effects``): if this
        raises, they stay pending and are delivered again, so there is no backlog here. A
        change delivered twice re-decides from a fresh read and pushes nothing new."""
        supis = list(dict.fromkeys(c.supi for c in changes))
        await self.reevaluate(await self._store.for_subscribers(supis))

    async def reevaluate(self, policies: Sequence[StoredPolicy]) -> int:
        """Re-judge the policies against the ledger now; returns notifications sent."""
        if not policies:
            return 0
        by_supi: dict[str, list[StoredPolicy]] = {}
        for p in policies:
            by_supi.setdefault(p.state.supi, []).append(p)
        outcomes = await asyncio.gather(
            *(self._reevaluate_subscriber(supi, ps) for supi, ps in by_supi.items()))
        notes = [n for o in outcomes for n in o.notifications]
        if notes:
            await self._outbox.enqueue(notes)
        # Then, concurrently: make sure no push was overtaken, and record the events.
        pushed = {sid: v for o in outcomes for sid, v in o.pushed.items()}
        again, _ = await asyncio.gather(
            self._converge(pushed), self._write_edrs([r for o in outcomes for r in o.records]))
        notes += again
        for n in notes:
            logs.log(log, logging.INFO, "policy pushed", supi=n.supi, smPolicyId=n.resource,
                     kind=n.kind)
        return len(notes)

    async def _write_edrs(self, records: Sequence[dict[str, Any]]) -> None:
        if self._speed_changed is not None:
            for r in records:
                if r.get("event") in SPEED_EVENTS:
                    self._speed_changed(str(r["event"]))
        await asyncio.gather(*(self._edr.write(r) for r in records))

    async def _reevaluate_subscriber(self, supi: str, policies: list[StoredPolicy]
                                     ) -> _Outcome:
        now = self._clock.now()
        sub = await self._subscriber(supi, [p.state.serving_plmn for p in policies], now)
        out = _Outcome([], [], {})
        pending = list(policies)
        for _ in range(_CAS_ATTEMPTS):
            done = await asyncio.gather(*(self._apply(p, sub, now, out) for p in pending))
            retry = [p for p, ok in zip(pending, done, strict=True) if not ok]
            if not retry:
                return out
            # Someone else re-decided these meanwhile: read both sides again.
            ids = {p.state.sm_policy_id for p in retry}
            pending = [p for p in await self._store.for_subscribers([supi])
                       if p.state.sm_policy_id in ids]
            if not pending:
                return out
            now = self._clock.now()
            sub = await self._subscriber(supi, [p.state.serving_plmn for p in pending], now)
        logs.log(log, logging.WARNING, "policy re-evaluation kept conflicting", supi=supi)
        return out

    async def _apply(self, p: StoredPolicy, sub: Subscriber | None, now: datetime,
                     out: _Outcome) -> bool:
        judgement: Judgement = core.judge(sub, p.state.serving_plmn, now)
        new, effects = core.decide(p.state, SubscriberChanged(judgement), now, self._qos)
        if new is None or new == p.state:
            return True
        decision: dict[str, Any] | None = None
        for e in effects:
            if isinstance(e, PushUpdate):
                decision = e.decision
        sid = p.state.sm_policy_id
        if not new.active:
            if not await self._store.terminate(sid, p.state.version, new.version, now):
                return False
        elif not await self._store.replace_state(
                new, p.state.version, _merge(p.decision, decision) if decision else None,
                now, push=decision is not None):
            return False
        for e in effects:
            if isinstance(e, PushUpdate):
                out.notifications.append(update_note(
                    sid, p.state.supi, p.state.notification_uri, p.resource_uri, e.decision))
                out.pushed[sid] = new.version
            elif isinstance(e, PushTerminate):
                out.notifications.append(terminate_note(
                    sid, p.state.supi, p.state.notification_uri, p.resource_uri, e.cause))
                out.pushed[sid] = new.version
            elif isinstance(e, Record):
                out.records.append(self._edr_doc(p, e, now, version=new.version))
        return True

    async def _converge(self, pushed: dict[str, int]) -> list[Notification]:
        """Confirm each push, and make sure the outbox ends on each policy's newest
        decision.

        Two re-evaluations (in two processes, say) commit versions n and n+1 in that order,
        but may reach the outbox in the other order; the coalescing outbox keeps the last
        one it was given. So after enqueueing, settle each push on its version: where the
        stored version moved past it, send the stored (newest) decision again and settle
        that. Whoever commits last settles last, so the last word is the newest decision."""
        sent: list[Notification] = []
        for _ in range(_CAS_ATTEMPTS):
            if not pushed:
                break
            ok = await asyncio.gather(*(self._store.settle(sid, v)
                                        for sid, v in pushed.items()))
            moved = [sid for sid, settled in zip(pushed, ok, strict=True) if not settled]
            if not moved:
                break
            heads = await self._store.heads(moved)
            again = [head_note(d) for d in heads]
            if not again:
                break
            await self._outbox.enqueue(again)
            sent += again
            pushed = {str(d["_id"]): int(d["version"]) for d in heads}
        return sent

    async def resend_owed(self, grace_s: float = OWED_GRACE_S, limit: int = 500) -> int:
        """Re-send decisions stored but never confirmed in the outbox (the process died
        between the two writes, or the outbox refused the push)."""
        now = self._clock.now()
        docs = await self._store.owed(now - timedelta(seconds=grace_s), limit)
        if not docs:
            return 0
        await self._outbox.enqueue([head_note(d) for d in docs])
        await self._converge({str(d["_id"]): int(d["version"]) for d in docs})
        return len(docs)

    async def revalidate_due(self, limit: int = 500) -> int:
        """Re-decide policies whose revalidation time (a boost's end) has come."""
        return await self.reevaluate(await self._store.due(self._clock.now(), limit))

    # -- the SMF says the session is gone ------------------------------------------------

    async def _gone(self, n: Notification) -> None:
        if n.resource is None:
            return
        p = await self._store.get(n.resource)
        if p is None:
            return
        now = self._clock.now()
        _new, effects = core.decide(p.state, Released(gone=True), now, self._qos)
        if await self._store.remove(n.resource):
            await self._records(p, effects, now)
            logs.log(log, logging.INFO, "SMF no longer knows the policy; ended locally",
                     supi=p.state.supi, smPolicyId=n.resource)

    async def _gone_quietly(self, n: Notification) -> None:
        # A terminate answered 404: the association was already removed here.
        if n.resource is not None:
            await self._store.remove(n.resource)

    # -- EDRs ----------------------------------------------------------------------------

    def _host_network(self, serving: str | None, sub: Subscriber | None) -> str | None:
        net = self._settings.network_for_plmn(serving) if serving else None
        if net is not None:
            return net.id
        return sub.view.home_network if sub is not None else None

    def _edr_doc(self, p: StoredPolicy, rec: Record, now: datetime, *,
                 version: int, serving: str | None = None) -> dict[str, Any]:
        plmn = serving if serving is not None else p.state.serving_plmn
        pdu = p.context.get("pduSessionId")
        # A session controlled over Gx has its pushes sent over Diameter.
        gx = p.state.notification_uri.startswith(DIAMETER_SCHEME)
        party = Party(supi=p.state.supi, gpsi=p.gpsi, brand=p.brand,
                      host_network=p.host_network, serving_plmn=plmn,
                      roaming=p.state.roaming,
                      pdu_session_id=None if gx or not isinstance(pdu, int) else pdu,
                      interface="gx" if gx else "sbi")
        sid = p.state.sm_policy_id
        return policy_record(
            event=rec.kind, time=now, party=party, sm_policy_id=sid,
            speed_before=_speed_record(rec.speed_before),
            speed_after=_speed_record(rec.speed_after), reason=rec.reason,
            # One record per decision version and event: a re-run writes it once.
            record_id=f"pcf:{sid}:{version}:{rec.kind}",
            extra={"decision_version": version})

    async def _records(self, p: StoredPolicy, effects: Sequence[core.Effect], now: datetime,
                       serving: str | None = None, version: int | None = None) -> None:
        for e in effects:
            if isinstance(e, Record):
                await self._edr.write(self._edr_doc(
                    p, e, now, version=p.state.version if version is None else version,
                    serving=serving))


def head_note(doc: dict[str, Any]) -> Notification:
    """The push that brings the SMF to the stored decision of a policy document."""
    sid, supi = str(doc["_id"]), str(doc["supi"])
    uri, res = str(doc["notificationUri"]), str(doc["resourceUri"])
    if doc.get("ended"):
        return terminate_note(sid, supi, uri, res, "UE_SUBSCRIPTION")
    return update_note(sid, supi, uri, res, dict(doc["decision"]))


def update_note(sid: str, supi: str, notification_uri: str, resource_uri: str,
                decision: dict[str, Any]) -> Notification:
    """``POST {notificationUri}/update`` with an ``SmPolicyNotification``; the latest
    decision of a policy supersedes any unsent earlier one (coalescing key)."""
    return Notification(
        kind=KIND_UPDATE, uri=f"{notification_uri}/update",
        body={"resourceUri": resource_uri, "smPolicyDecision": decision},
        coalesce_key=f"pcf:{sid}", resource=sid, supi=supi)


def terminate_note(sid: str, supi: str, notification_uri: str, resource_uri: str,
                   cause: str) -> Notification:
    return Notification(
        kind=KIND_TERMINATE, uri=f"{notification_uri}/terminate",
        body={"resourceUri": resource_uri, "cause": cause},
        coalesce_key=f"pcf:{sid}", resource=sid, supi=supi)


def _answer(effects: Sequence[core.Effect]) -> dict[str, Any]:
    for e in effects:
        if isinstance(e, Answer):
            return e.decision
    raise AssertionError("the core gave no decision to answer with")  # pragma: no cover


def _merge(held: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The full decision the SMF holds after receiving ``delta`` (for ``GET``)."""
    merged = dict(held)
    for k, v in delta.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    if "revalidationTime" not in delta:
        merged.pop("revalidationTime", None)
    return merged
