"""The CHF's async shell: load the session, ask the core, run the ledger, store.

Round trips per request on the hot path: create = subscriber read + one ledger write (all
rating groups of the request at once) + session insert; update = **one ledger write**
when this process holds the session (the session's new state, its *note*, and the step's
EDR ride the wallet write: ``Ledger.charge_noted``; otherwise a session read and a wallet
read first); release = session and note read + one ledger write (usage committed, the
session's holds released and its note dropped together) + session close. Effects leave
after the answer, durably: the ledger writes counter changes as pending entries of its own
update (delivered to the PCF and the others by ``nf.ledger.effects``), and the EDR of a
step is a pending entry of the write that stored the step (stored in ``edrs`` by
``nf.edr.pending``). A crash after the answer loses neither: any process's sweeper
delivers what was left pending.

Beside it: ``request`` reads what a request asks, ``step`` is the CHF's decision on a
step's outcomes (a value the ledger writes), ``edrs`` the one way an EDR is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from nf import logs
from nf.chf import core, request
from nf.chf.core import Reply, Sequencing, Session, StepKey, Terms, UnitRequest
from nf.chf.edrs import WALLET_EDR, Carrier, ChargingEdrs, charging_edr
from nf.chf.request import unit_requests
from nf.chf.step import Made, NotedStep
from nf.chf.store import SessionStore, retention_cutoff, with_note
from nf.chf.wire import ChargingDataRequest, abort_charging, reauthorization, render_answer
from nf.edr.port import EdrSink
from nf.edr.records import UnitRecord
from nf.effects import Drain
from nf.errors import BadRequest, Conflict, Congestion, InvalidParam, MandatoryIeMissing, NotFound
from nf.ledger.port import ChargeOutcome, ChargeStep, CounterChange, Ledger, Noted
from nf.notify.port import Client, Notification, Outbox
from nf.runtime import Runtime
from nf.store.mongo import Doc

log = logging.getLogger("nf.chf")

KIND_REAUTH = "chf.reauthorization"
KIND_ABORT = "chf.abort"
# Closed sessions are kept this long so a retransmitted release is answered again.
CLOSED_RETENTION_S = 3600.0
SUPERVISION_BATCH = 200
# Reads and tries of an update whose session others keep writing, before 503.
NOTE_ATTEMPTS = 4

Result = tuple[int, dict[str, Any] | None]
__all__ = ["KIND_ABORT", "KIND_REAUTH", "WALLET_EDR", "ChargingService", "unit_requests"]


class ChargingService:
    """Nchf_ConvergedCharging: create, update and release of charging sessions, their
    supervision, and the notifications counter changes call for."""

    def __init__(self, rt: Runtime, *, ledger: Ledger, outbox: Outbox, edrs: EdrSink,
                 store: SessionStore, pending_edrs: Drain[Doc] | None = None,
                 wallet_edrs: Drain[Doc] | None = None) -> None:
        self._rt = rt
        # The one way EDRs are stored: as pending entries of the session writes (release)
        # and of the wallet writes (create, update) when these drains are given, otherwise
        # before answering (``nf.chf.edrs``).
        self._edrs = ChargingEdrs(edrs, session=pending_edrs, wallet=wallet_edrs)
        self._ledger = ledger
        self._outbox = outbox
        self.store = store
        self._grace_s = rt.settings.chf.reservation_grace_s
        self._max_groups = rt.settings.chf.max_rating_groups_per_request

    # -- helpers --------------------------------------------------------------------------

    def _network(self, *plmns: str | None, fallback_id: str | None = None) -> Terms:
        return request.network(self._rt.settings, *plmns, fallback_id=fallback_id)

    async def _charge(self, session: Session, steps: Sequence[ChargeStep], now: datetime,
                      close: bool = False) -> list[ChargeOutcome]:
        """Every rating group of the request as one ledger step (one conditional write;
        with ``close``, the session's remaining holds released by the same write). The
        counter changes leave as the ledger's effects."""
        return list(await self._ledger.charge_request(session.supi, session.ref, steps, now,
                                                      close=close))

    # -- service operations ---------------------------------------------------------------

    async def owner(self, ref: str) -> str | None:
        """The host network that holds session ``ref`` (``None``: no such session)."""
        session = self.store.cached(ref, self._rt.clock.now()) or await self.store.get(ref)
        return session.host_network if session is not None else None

    async def create(self, req: ChargingDataRequest, *, ref: str | None = None,
                     interface: str = "sbi", client: Client | None = None
                     ) -> tuple[int, dict[str, Any], str]:
        """Open a session. ``ref``: the session's reference when the transport derives it
        (Gy: from the Diameter Session-Id), else derived from the request; ``interface``:
        what the session's EDRs record; ``client``: the Diameter client that opens it,
        stored with the session (``opened_by`` finds it again if it restarts)."""
        now = self._rt.clock.now()
        supi = req.subscriberIdentifier
        if not supi:
            raise MandatoryIeMissing("subscriberIdentifier is required to open a session",
                                     [InvalidParam("/subscriberIdentifier", "missing")])
        isn = req.invocationSequenceNumber
        units = unit_requests(req, self._max_groups)
        consumer = req.nfConsumerIdentification
        consumer_id = consumer.nFName or consumer.nFFqdn or req.consumer_plmn or ""
        ref = ref or core.charging_data_ref(supi, consumer_id, req.charging_id,
                                            req.pdu_session_id,
                                            req.invocationTimeStamp.isoformat())
        logs.bind(supi=supi, chargingDataRef=ref)
        view = await self._ledger.subscriber(supi, now)
        terms = self._network(req.consumer_plmn, req.serving_plmn,
                              fallback_id=view.home_network if view else None)
        serving = req.serving_plmn or req.consumer_plmn or (view.home_plmn if view else "")
        refusal = core.refuse_subscriber(view, isn, units)
        if refusal is not None:
            s = Session(ref, supi, view.gpsi if view else None, view.brand if view else "",
                        view.home_network if view else "", view.home_plmn if view else "",
                        terms.network_id, serving, False, req.notifyUri, "TERMINATE", None,
                        terms.validity_time_s, isn, None, interface=interface)
            return await self._refuse(s, refusal, units, now, req.pdu_session_id)
        assert view is not None
        session = Session(
            ref=ref, supi=supi, gpsi=view.gpsi, brand=view.brand,
            home_network=view.home_network, home_plmn=view.home_plmn,
            host_network=terms.network_id, serving_plmn=serving,
            roaming=core.is_roaming(serving, request.home_plmns(
                self._rt.settings, view.home_network, view.home_plmn)),
            notify_uri=req.notifyUri, final_action=view.block_final_unit_action,
            topup_url=view.topup_url, validity_time_s=terms.validity_time_s,
            last_isn=-1, reply=None, interface=interface, client=client)
        # The session's first note and the create's EDR ride the ledger's write, so a
        # session has a note from its start (a copy of it is never behind one).
        got = await self._charge_noted(session, isn, units, terms, now, "create",
                                       expect_isn=None, pdu_session_id=req.pdu_session_id)
        if got is None:  # the wallet holds a note of this session: a retransmitted create
            return await self._create_again(session, isn, now)
        if got.written is None:  # the subscriber is gone since it was read: nothing written
            gone = core.refuse_subscriber(None, isn, units)
            assert gone is not None
            return await self._refuse(replace(session, last_isn=isn), gone, units, now,
                                      req.pdu_session_id)
        made = got.written.made
        inserted = await self.store.insert(made.session, now)
        await self._edrs.settle(made.edr, got.written.wallet_id)
        if not inserted:
            return await self._create_again(session, isn, now)
        return 201, made.body, ref

    async def _refuse(self, s: Session, refusal: core.Answer, units: list[UnitRequest],
                      now: datetime, pdu_session_id: int | None
                      ) -> tuple[int, dict[str, Any], str]:
        """A create refused as a whole: its answer, and its EDR stored first."""
        await self._edrs.store(charging_edr(
            s, "create", now, s.last_isn, refusal.result,
            [UnitRecord(u.rating_group, u.used_ul, u.used_dl, u.used_total, result=a.result)
             for u, a in zip(units, refusal.units, strict=True)],
            StepKey(s.ref, s.last_isn).record_id, pdu_session_id))
        return refusal.status, render_answer(refusal, now), s.ref

    async def _create_again(self, session: Session, isn: int, now: datetime
                            ) -> tuple[int, dict[str, Any], str]:
        """A create whose session exists: the stored answer if it is this create's (a
        retransmission), else a conflict. If the process that charged it died before
        storing the session, the session is stored now, from its note."""
        ref = session.ref
        existing = await self.store.get(ref)
        if existing is None:
            n = await self._ledger.read_note(session.supi, ref, now)
            if n is not None and n.get("i") == isn:
                existing = with_note(replace(session, last_isn=isn), n)
                if not await self.store.insert(existing, now):
                    existing = await self.store.get(ref)
        if existing is not None and existing.last_isn == isn and existing.reply \
                and existing.reply.status == 201 and existing.reply.body is not None:
            return 201, dict(existing.reply.body), ref
        raise Conflict(f"charging session {ref} exists already")

    async def _open_session(self, ref: str, isn: int, session: Session | None,
                            replay_status: int | None) -> Session | Result:
        """The open session, or the cached answer to replay (only an answer of the same
        operation, ``replay_status``: an update reusing the create's number is refused)."""
        if session is None or not session.open:
            raise NotFound(f"no open charging session {ref}", cause="RESOURCE_NOT_FOUND")
        logs.bind(supi=session.supi)
        seq = core.check_sequence(session, isn)
        reply = session.reply
        if seq is Sequencing.REPLAY and reply is not None and reply.status == replay_status:
            return reply.status, dict(reply.body) if reply.body is not None else None
        if seq is not Sequencing.PROCEED:
            raise BadRequest(
                f"invocationSequenceNumber {isn} is not after {session.last_isn}",
                cause="MANDATORY_IE_INCORRECT",
                invalid_params=[InvalidParam("/invocationSequenceNumber",
                                             f"must be greater than {session.last_isn}")])
        return session

    async def update(self, ref: str, req: ChargingDataRequest) -> Result:
        now = self._rt.clock.now()
        isn = req.invocationSequenceNumber
        units = unit_requests(req, self._max_groups)
        logs.bind(chargingDataRef=ref)
        cached = self.store.cached(ref, now)
        if cached is not None and core.check_sequence(cached, isn) \
                is Sequencing.PROCEED:
            logs.bind(supi=cached.supi)
            done = await self._noted_update(cached, req, isn, units, now)
            if done is not None:
                return 200, done
            self.store.forget(ref)  # the copy was stale: read the session again
        for _ in range(NOTE_ATTEMPTS):
            found = await self._open_session(ref, isn, await self._read(ref, now), 200)
            if not isinstance(found, Session):
                return found
            done = await self._noted_update(found, req, isn, units, now)
            if done is not None:
                return 200, done
        raise Congestion(f"charging session {ref} is being updated concurrently; retry")

    async def _read(self, ref: str, now: datetime, fresh: bool = False) -> Session | None:
        """The session as stored, with its note on the wallet laid over it (without
        ``fresh``, the note may come from this process's copy of the wallet)."""
        s = await self.store.get(ref)
        if s is None or not s.open:
            return s
        s = with_note(s, await self._ledger.read_note(s.supi, ref, now, fresh=fresh))
        self.store.remember(s)
        return s

    async def _noted_update(self, found: Session, req: ChargingDataRequest, isn: int,
                            units: list[UnitRequest], now: datetime
                            ) -> dict[str, Any] | None:
        """Charge the update and store the session's new state (its note, with the answer
        for retransmissions) and its EDR in the same ledger write, if the wallet's note is
        still the one ``found`` was read with. The answer, or None (``found`` was stale:
        nothing was written)."""
        session, terms = request.updated(self._rt.settings, found, req)
        got = await self._charge_noted(session, isn, units, terms, now, "update",
                                       expect_isn=found.note_isn,
                                       pdu_session_id=req.pdu_session_id)
        if got is None:
            return None
        if got.written is None:  # the subscriber is gone: the session is stored here
            _stored, body = await self._commit_update(found.ref, session, isn, units,
                                                      list(got.outcomes), terms, now,
                                                      pdu_session_id=req.pdu_session_id)
            return body
        made = got.written.made
        self.store.remember(made.session)
        await self._edrs.settle(made.edr, got.written.wallet_id)
        return made.body

    async def _charge_noted(self, session: Session, isn: int, units: list[UnitRequest],
                            terms: Terms, now: datetime, event: str, *,
                            expect_isn: int | None, pdu_session_id: int | None
                            ) -> Noted[Made] | None:
        """One ledger write for the whole step: the charge, and what the CHF decides from
        its outcomes (``NotedStep``: the session's note after it, its EDR; see
        ``Ledger.charge_noted``). None: the note was not at ``expect_isn``."""
        key = StepKey(session.ref, isn)
        steps = core.charge_steps(session, key.isn, units, terms, now, self._grace_s)
        decide = NotedStep(session, isn, units, terms, now, event,
                           201 if event == "create" else 200, key.record_id, pdu_session_id,
                           self._edrs)
        return await self._ledger.charge_noted(session.supi, key.ref, steps, now,
                                               expect_isn=expect_isn, isn=key.isn,
                                               note=decide)

    async def _commit_update(self, ref: str, session: Session, isn: int,
                             units: list[UnitRequest], outcomes: list[ChargeOutcome],
                             terms: Terms, now: datetime, expect_isn: int | None = None,
                             pdu_session_id: int | None = None
                             ) -> tuple[bool, dict[str, Any]]:
        """Decide the answer from the ledger's outcomes, then store the session (with the
        answer, for retransmissions) and its EDR together. Returns (stored, answer)."""
        decision = core.decide(session, isn, units, outcomes, terms, status=200)
        body = render_answer(decision.answer, now)
        new = replace(decision.session, reply=Reply(200, body),
                      expires_at=core.supervision_deadline(now, terms.validity_time_s))
        edr = self._edrs.pending(Carrier.SESSION, charging_edr(
            new, "update", now, isn, decision.answer.result, decision.records,
            StepKey(ref, isn).record_id, pdu_session_id), now)
        stored = await self.store.advance(new, now, expect_isn=expect_isn, fx=edr.fx)
        await self._edrs.settle(edr, ref if stored else None)
        return stored, body

    async def release(self, ref: str, req: ChargingDataRequest) -> Result:
        now = self._rt.clock.now()
        isn = req.invocationSequenceNumber
        units = unit_requests(req, self._max_groups)
        logs.bind(chargingDataRef=ref)
        # This process's copy will do: the close below is conditional (open, and before
        # this request), and a copy is dropped when its session closes here.
        session = self.store.cached(ref, now) or await self._read(ref, now)
        if session is not None and not session.open and session.last_isn == isn:
            return 204, None  # a retransmitted release
        found = await self._open_session(ref, isn, session, None)
        assert isinstance(found, Session)  # nothing to replay: a release closes the session
        session = found
        if req.serving_plmn:
            session = replace(session, serving_plmn=req.serving_plmn)
        terms = self._network(req.consumer_plmn, session.serving_plmn,
                              fallback_id=session.host_network)
        steps = core.charge_steps(session, isn, units, terms, now, self._grace_s,
                                  closing=True)
        outcomes = await self._charge(session, steps, now, close=True)
        decision = core.decide(session, isn, units, outcomes, terms, status=204, closing=True)
        edr = self._edrs.pending(Carrier.SESSION, charging_edr(
            session, "release", now, isn, decision.answer.result, decision.records,
            StepKey(ref, isn).record_id, req.pdu_session_id), now)
        closed = await self.store.close(ref, "release", now, isn=isn, reply=Reply(204, None),
                                        fx=edr.fx)
        await self._edrs.settle(edr, ref if closed is not None else None)
        return 204, None

    # -- supervision, notifications, peers gone -------------------------------------------

    async def _close_locally(self, ref: str, reason: str, now: datetime,
                             only_if_due: bool = False) -> bool:
        if only_if_due:
            # Updates move the deadline on the wallet's note: if the note says the session
            # is alive, store its deadline here instead of closing.
            current = await self._read(ref, now, fresh=True)
            if current is None or not current.open:
                return False
            if current.expires_at is not None and current.expires_at > now:
                await self.store.sync(current, now)
                return False
        s = await self.store.close(ref, reason, now, only_if_due=only_if_due)
        if s is None:
            return False
        await self._ledger.close_session(s.supi, ref, now)
        await self._edrs.store(charging_edr(s, reason, now, None, "SUCCESS", [],
                                            f"{ref}:{reason}"))
        logs.log(log, logging.INFO, "charging session closed", chargingDataRef=ref,
                 supi=s.supi, reason=reason)
        return True

    async def supervise_once(self) -> int:
        """Close sessions not heard of for twice their validity time; returns how many."""
        now = self._rt.clock.now()
        closed = 0
        for ref in await self.store.due(now, SUPERVISION_BATCH):
            if await self._close_locally(ref, "supervision_close", now, only_if_due=True):
                closed += 1
        await self.store.purge_closed(retention_cutoff(now, CLOSED_RETENTION_S))
        return closed

    async def opened_by(self, network: str, host: str, state_id: int, limit: int = 1000
                        ) -> list[str]:
        """The open sessions a Diameter client opened before it restarted (its
        Origin-State-Id went up to ``state_id``): to be abandoned."""
        return await self.store.opened_by(network, host, state_id, limit)

    async def abandon(self, ref: str, reason: str) -> bool:
        """End ``ref``, which its client lost (it restarted): reservations back, an EDR."""
        return await self._close_locally(ref, reason, self._rt.clock.now())

    async def peer_gone(self, n: Notification) -> None:
        """The SMF answered 404 to a notification: the session is gone there, end it here."""
        if n.resource:
            await self._close_locally(n.resource, "peer_gone", self._rt.clock.now())

    async def counters_changed(self, changes: Sequence[CounterChange]) -> None:
        wanted = [c for c in changes if c.quota_restored or core.left_active(c)]
        if not wanted:
            return
        now = self._rt.clock.now()
        sessions = [with_note(s, await self._ledger.read_note(s.supi, s.ref, now,
                                                              fresh=False))
                    for s in await self.store.open_for(list(dict.fromkeys(
                        c.supi for c in wanted)))]
        notes: list[Notification] = []
        for c in wanted:
            mine = [s for s in sessions if s.supi == c.supi]
            for s, rgs in core.reauthorization_targets(c, mine):
                assert s.notify_uri is not None
                notes.append(Notification(KIND_REAUTH, s.notify_uri, reauthorization(rgs),
                                          coalesce_key=f"chf:{s.ref}", resource=s.ref,
                                          supi=s.supi))
            for s in core.abort_targets(c, mine):
                assert s.notify_uri is not None
                notes.append(Notification(KIND_ABORT, s.notify_uri, abort_charging(),
                                          coalesce_key=f"chf:{s.ref}", resource=s.ref,
                                          supi=s.supi))
        if notes:
            await self._outbox.enqueue(notes)
            for n in notes:
                logs.log(log, logging.INFO, "charging notification queued", kind=n.kind,
                         chargingDataRef=n.resource, supi=n.supi)
