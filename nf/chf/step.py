"""The CHF's decision on a charging step's outcomes, as a value the ledger writes with
the step (``Ledger.charge_noted``): the session after the step, its answer, its note on
the wallet and its EDR. Pure: the ledger asks it again on every try of its write (each
try decides from the wallet as it then is) and hands back what the written try made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from nf.chf import core
from nf.chf.core import Reply, Session, Terms, UnitRequest
from nf.chf.edrs import Carrier, ChargingEdrs, PendingEdr, charging_edr
from nf.chf.store import note_doc
from nf.chf.wire import render_answer
from nf.ledger.port import ChargeOutcome, NoteWrite


@dataclass(frozen=True, slots=True)
class Made:
    """What a noted step wrote: the session after it, its answer, and its EDR."""

    session: Session
    body: dict[str, Any]
    edr: PendingEdr


@dataclass(frozen=True, slots=True)
class NotedStep:
    """Request ``isn`` of ``session`` (a create's or an update's, answered ``status``):
    called with the ledger's outcomes, it answers what to write with them."""

    session: Session
    isn: int
    units: Sequence[UnitRequest]
    terms: Terms
    now: datetime
    event: str
    status: int
    record_id: str
    pdu_session_id: int | None
    edrs: ChargingEdrs

    def __call__(self, outcomes: tuple[ChargeOutcome, ...]) -> NoteWrite[Made]:
        now, isn = self.now, self.isn
        decision = core.decide(self.session, isn, self.units, outcomes, self.terms,
                               status=self.status)
        body = render_answer(decision.answer, now)
        new = replace(decision.session, reply=Reply(self.status, body), note_isn=isn,
                      expires_at=core.supervision_deadline(now, self.terms.validity_time_s))
        record = charging_edr(new, self.event, now, isn, decision.answer.result,
                              decision.records, self.record_id, self.pdu_session_id)
        edr = self.edrs.pending(Carrier.WALLET, record, now)
        return NoteWrite(note_doc(new), edr.fx, Made(new, body, edr))
