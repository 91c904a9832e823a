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
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nf import logs
from nf.clock import Clock
from nf.config import Settings
from nf.edr.port import EdrSink
from nf.errors import Forbidden, NfError
from nf.ledger.port import BalanceView, CounterChange, Ledger
from nf.notify.port import Client, Notification, Outbox
from nf.pcf import core, reading
from nf.pcf.messages import (
    KIND_TERMINATE,
    KIND_UPDATE,
    answer_of,
    head_note,
    merged,
    policy_id,
    policy_not_found,
    rejection,
    terminate_note,
    update_note,
)
from nf.pcf.reading import Decided
from nf.pcf.records import host_network_of, policy_edr
from nf.pcf.store import PolicyStore, StoredPolicy
from nf.pcf.wire import SmPolicyContextData, SmPolicyUpdateContextData, raw

log = logging.getLogger("nf.pcf")

# Importable from here too, as before they moved to ``nf.pcf.messages``.
__all__ = ["API_PREFIX", "KIND_TERMINATE", "KIND_UPDATE", "OWED_GRACE_S", "SPEED_EVENTS",
           "Decided", "PcfService", "head_note", "policy_id", "policy_not_found", "rejection",
           "terminate_note", "update_note"]

API_PREFIX = "/npcf-smpolicycontrol/v1"
_CAS_ATTEMPTS = 5
# The records of a re-decision that changed a session's speed (``core.speed_event_kind``).
SPEED_EVENTS = frozenset({"throttled", "restored", "speed-changed"})
# A decision stored but not yet confirmed in the outbox for this long is re-sent.
OWED_GRACE_S = 5.0


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
        self._qos = core.DefaultQos(settings.pcf.default_5qi, settings.pcf.default_arp_priority)
        outbox.on_gone(KIND_UPDATE, self._gone)
        outbox.on_gone(KIND_TERMINATE, self._gone_quietly)

    async def _subscriber(self, supi: str, plmns: Sequence[str | None], now: datetime
                          ) -> tuple[core.Subscriber | None, BalanceView | None]:
        return await reading.subscriber(self._settings, self._ledger, supi, plmns, now)

    # -- service operations --------------------------------------------------------------

    async def owner(self, sm_policy_id: str) -> str | None:
        """The host network that created the association (``None``: none recorded)."""
        doc = await self._store.get_any(sm_policy_id)
        owner = doc.get("hostNetwork") if doc is not None else None
        return str(owner) if owner is not None else None

    async def create(self, ctx: SmPolicyContextData, api_root: str,
                     host_network: str | None = None) -> tuple[str, dict[str, Any]]:
        """``host_network``: the authenticated caller's (else taken from the body)."""
        d = await self.create_decided(ctx, api_root, host_network)
        return d.resource_uri, d.decision

    async def create_decided(self, ctx: SmPolicyContextData, api_root: str,
                             host_network: str | None = None, *,
                             sm_policy_id: str | None = None, client: Client | None = None
                             ) -> Decided:
        """``create`` with the balance it read. ``sm_policy_id``: the id when the transport
        derives it (Gx: from the host network and the Session-Id); ``client``: the Diameter
        client that opens it (found again if it restarts: ``opened_by``)."""
        now = self._clock.now()
        serving = ctx.serving_network.plmn if ctx.serving_network else None
        logs.bind(supi=ctx.supi)
        # One id per PDU session of an SMF: a repeated create replaces the association it
        # made (same id, a higher version) instead of leaving a second one behind.
        sm_policy_id = sm_policy_id or policy_id(ctx.supi, ctx.pdu_session_id,
                                                 ctx.notification_uri)
        logs.bind(smPolicyId=sm_policy_id)
        sub, _ = await self._subscriber(ctx.supi, [serving], now)
        judgement = core.judge(sub, serving, now)
        event = core.Created(sm_policy_id, ctx.supi, ctx.notification_uri, serving, judgement,
                        version=max(1, int(now.timestamp() * 1000)))
        try:
            state, effects = core.decide(None, event, now, self._qos)
        except core.PolicyRejected as e:
            raise rejection(e) from None
        assert state is not None
        decision = answer_of(effects)
        if ctx.supp_feat is not None:
            # Features negotiated: none of the optional TS 29.512 features is supported.
            decision["suppFeat"] = "0"
        resource_uri = f"{api_root.rstrip('/')}{API_PREFIX}/sm-policies/{sm_policy_id}"
        stored = StoredPolicy(
            state=state, context=raw(ctx), resource_uri=resource_uri,
            brand=sub.view.brand if sub else None, gpsi=ctx.gpsi or (
                sub.view.gpsi if sub else None),
            host_network=host_network or host_network_of(self._settings, serving, sub),
            decision=decision, client=client)
        await self._store.insert(stored, now)
        await self._records(stored, effects, now)
        decision, balance = await self._recheck_new(stored, decision, serving)
        return Decided(resource_uri, decision, balance)

    async def _recheck_new(self, p: StoredPolicy, decision: dict[str, Any],
                           serving: str | None
                           ) -> tuple[dict[str, Any], BalanceView | None]:
        """Close the gap between reading the ledger and storing the new policy: a counter
        change in between found no policy to push to. Read the ledger again now that the
        policy is visible; if the speed moved, answer the newer decision at once."""
        now = self._clock.now()
        sub, balance = await self._subscriber(p.state.supi, [serving], now)
        new, effects = core.decide(p.state, core.SubscriberChanged(core.judge(sub, serving, now)),
                                   now, self._qos)
        if new is None or new == p.state:
            return decision, balance
        if not new.active:
            if await self._store.remove(p.state.sm_policy_id, p.state.version):
                await self._records(p, effects, now, version=new.version)
                raise Forbidden("the subscriber's status changed while the association was "
                                "made", cause="POLICY_CONTEXT_DENIED")
            return decision, balance  # someone else re-decided it and pushes the result
        full = core.session_decision(new, self._qos, initial=True, now=now)
        if "suppFeat" in decision:
            full["suppFeat"] = decision["suppFeat"]
        if not await self._store.replace_state(new, p.state.version, full, now):
            return decision, balance
        await self._records(p, effects, now, version=new.version)
        return full, balance

    async def opened_by(self, network: str, host: str, state_id: int, limit: int = 1000
                        ) -> list[str]:
        """The live associations a Diameter client opened before it restarted (its
        Origin-State-Id went up to ``state_id``): to be deleted."""
        return await self._store.opened_by(network, host, state_id, limit)

    async def get(self, sm_policy_id: str) -> dict[str, Any]:
        p = await self._store.get(sm_policy_id)
        if p is None:
            raise policy_not_found(sm_policy_id)
        return {"context": p.context, "policy": p.decision}

    async def update(self, sm_policy_id: str, upd: SmPolicyUpdateContextData
                     ) -> dict[str, Any]:
        return (await self.update_decided(sm_policy_id, upd)).decision

    async def update_decided(self, sm_policy_id: str, upd: SmPolicyUpdateContextData
                             ) -> Decided:
        """``update`` with the balance it read."""
        logs.bind(smPolicyId=sm_policy_id)
        for _ in range(_CAS_ATTEMPTS):
            p = await self._store.get(sm_policy_id)
            if p is None:
                raise policy_not_found(sm_policy_id)
            now = self._clock.now()
            serving = upd.serving_network.plmn if upd.serving_network \
                else p.state.serving_plmn
            sub, balance = await self._subscriber(p.state.supi, [serving], now)
            judgement = core.judge(sub, serving, now)
            new, effects = core.decide(p.state, core.ContextUpdated(serving, judgement), now,
                                       self._qos)
            assert new is not None
            decision = answer_of(effects)
            if not new.active:
                if not await self._store.remove(sm_policy_id, p.state.version):
                    continue
            elif not await self._store.replace_state(
                    new, p.state.version, merged(p.decision, decision), now):
                continue
            await self._records(p, effects, now, serving=serving, version=new.version)
            return Decided(p.resource_uri, decision, balance)
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
        _new, effects = core.decide(p.state, core.Released(), now, self._qos)
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
        sub, _ = await self._subscriber(supi, [p.state.serving_plmn for p in policies],
                                        now)
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
            sub, _ = await self._subscriber(
                supi, [p.state.serving_plmn for p in pending], now)
        logs.log(log, logging.WARNING, "policy re-evaluation kept conflicting", supi=supi)
        return out

    async def _apply(self, p: StoredPolicy, sub: core.Subscriber | None, now: datetime,
                     out: _Outcome) -> bool:
        judgement: core.Judgement = core.judge(sub, p.state.serving_plmn, now)
        new, effects = core.decide(p.state, core.SubscriberChanged(judgement), now, self._qos)
        if new is None or new == p.state:
            return True
        decision: dict[str, Any] | None = None
        for e in effects:
            if isinstance(e, core.PushUpdate):
                decision = e.decision
        sid = p.state.sm_policy_id
        if not new.active:
            if not await self._store.terminate(sid, p.state.version, new.version, now):
                return False
        elif not await self._store.replace_state(
                new, p.state.version, merged(p.decision, decision) if decision else None,
                now, push=decision is not None):
            return False
        for e in effects:
            if isinstance(e, core.PushUpdate):
                out.notifications.append(update_note(
                    sid, p.state.supi, p.state.notification_uri, p.resource_uri, e.decision))
                out.pushed[sid] = new.version
            elif isinstance(e, core.PushTerminate):
                out.notifications.append(terminate_note(
                    sid, p.state.supi, p.state.notification_uri, p.resource_uri, e.cause))
                out.pushed[sid] = new.version
            elif isinstance(e, core.Record):
                out.records.append(policy_edr(p, e, now, version=new.version))
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
        _new, effects = core.decide(p.state, core.Released(gone=True), now, self._qos)
        if await self._store.remove(n.resource):
            await self._records(p, effects, now)
            logs.log(log, logging.INFO, "SMF no longer knows the policy; ended locally",
                     supi=p.state.supi, smPolicyId=n.resource)

    async def _gone_quietly(self, n: Notification) -> None:
        # A terminate answered 404: the association was already removed here.
        if n.resource is not None:
            await self._store.remove(n.resource)

    # -- EDRs ----------------------------------------------------------------------------

    async def _records(self, p: StoredPolicy, effects: Sequence[core.Effect], now: datetime,
                       serving: str | None = None, version: int | None = None) -> None:
        for e in effects:
            if isinstance(e, core.Record):
                await self._edr.write(policy_edr(
                    p, e, now, version=p.state.version if version is None else version,
                    serving=serving))
