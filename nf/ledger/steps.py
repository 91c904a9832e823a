"""A decision over one wallet as a value (``Plan``), and the charging steps that make one.
Pure: no I/O, no clock, no logging.

The ledger's retry loop (``WalletRepo.mutate``) reads the wallet document, asks a ``Step``
for its ``Plan`` and writes what the plan says; if another writer got there first, it
reads again and asks again. A step keeps no state between tries: everything it answers is
in the value it returns. A charging step writes, besides the wallet, the CHF's note of
its session (``cs.<ref>``, see ``nf.ledger.notes``) and the pending entries the CHF
decided from the step's outcomes (``NoteWrite``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from nf.ledger import core, marks, notes
from nf.ledger.codec import Doc
from nf.ledger.port import ChargeOutcome, ChargeStep, CounterChange, NoteFn, Written
from nf.ledger.state import Wallet

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")
Changes = tuple[CounterChange, ...]


@dataclass(frozen=True, slots=True)
class Extra:
    """What a wallet write carries besides the wallet's own change: fields set and unset
    as given (the CHF's session notes, ``cs.<ref>``) and pending entries of another kind
    than counter changes (the step's EDR), which the caller hands to their drain."""

    set: dict[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    fx: tuple[Doc, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan(Generic[R_co]):
    """A step's decision: the answer, and what to write for it (``wallet`` None: nothing;
    an answer that writes nothing is only trusted from a fresh read)."""

    result: R_co
    wallet: Wallet | None = None
    changes: Changes = ()  # written as pending effects of the same update
    extra: Extra | None = None


class Step(Protocol[R_co]):
    """One operation on one wallet, asked again on every try."""

    def early(self, doc: Doc) -> R_co | None:
        """An answer from the raw document alone, without decoding the wallet (nothing
        is written); None: decide."""
        ...

    def decide(self, doc: Doc, w: Wallet) -> Plan[R_co]: ...


@dataclass(frozen=True, slots=True)
class Apply:
    """A core function whose result is the counter changes it made (``None``: nothing to
    write)."""

    fn: Callable[[Wallet], tuple[Wallet | None, Changes]]

    def early(self, doc: Doc) -> Changes | None:
        return None

    def decide(self, doc: Doc, w: Wallet) -> Plan[Changes]:
        new, changes = self.fn(w)
        return Plan(changes, new, changes)


class Stale(Enum):
    """The session's note is not where the caller's copy of the session says: nothing is
    written, the caller reads the session again."""

    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Charged(Generic[T]):
    """A charging request's answer: one outcome per step, the counter changes written,
    and for a noted request what was written (None: the subscriber is unknown)."""

    outcomes: tuple[ChargeOutcome, ...]
    changes: Changes = ()
    written: Written[T] | None = None


@dataclass(frozen=True, slots=True)
class NoteSpec(Generic[T]):
    """A noted request: the note must be at ``expect_isn`` (None: absent) and becomes the
    caller's decision (``decide``) for request ``isn``."""

    expect_isn: int | None
    isn: int
    decide: NoteFn[T]


@dataclass(frozen=True, slots=True)
class ChargeRequest(Generic[T]):
    """Every rating group of one charging request (``core.charge_request``); with
    ``close``, the session's holds released and its note dropped by the same write; with
    ``note``, the caller's note and entries written with it."""

    supi: str
    session_id: str
    steps: Sequence[ChargeStep]
    now: datetime
    home_plmns: Mapping[str, frozenset[str]]  # host network id -> its PLMNs
    retention: timedelta
    note_grace: timedelta
    usage_pct: marks.PctOf
    close: bool = False
    note: NoteSpec[T] | None = None

    def early(self, doc: Doc) -> Charged[T] | Stale | None:
        spec = self.note
        if spec is None:
            return None
        n = note_of(doc, self.session_id)
        if (n is None) != (spec.expect_isn is None) or \
                (n is not None and n.get("i") != spec.expect_isn):
            return Stale.NOTE
        return None

    def decide(self, doc: Doc, w: Wallet) -> Plan[Charged[T] | Stale]:
        supi, now = self.supi, self.now
        m = w.member(supi)
        if m is None:
            return Plan(Charged(tuple(core.unknown_outcome() for _ in self.steps)))
        new, outs, changes = core.charge_request(
            w, self.steps, self.home_plmns.get(m.home_network, frozenset()), self.retention,
            (supi, self.session_id, now) if self.close else None)
        if new is w:
            # Nothing changed in the wallet; a noted step still writes its note, a close
            # still removes it.
            if self.note is None and not (
                    self.close and note_of(doc, self.session_id) is not None):
                return Plan(Charged(outs, changes))
        else:
            # Usage thresholds crossed (subscriber notices) travel with the counter changes.
            changes = marks.with_usage(w, new, supi, now, changes, self.usage_pct)
        spec = self.note
        if spec is None:
            extra = note_extra(doc, self.session_id, None, now, self.note_grace) \
                if self.close else None
            return Plan(Charged(outs, changes), new, changes, extra)
        made = spec.decide(outs)
        extra = note_extra(doc, self.session_id, {**made.note, "i": spec.isn, "s": supi},
                           now, self.note_grace, made.fx)
        return Plan(Charged(outs, changes, Written(w.id, made.made)), new, changes, extra)


@dataclass(frozen=True, slots=True)
class CloseSession:
    """Release every hold of a session (nothing debited) and drop its note."""

    supi: str
    session_id: str
    now: datetime
    retention: timedelta
    note_grace: timedelta

    def early(self, doc: Doc) -> Changes | None:
        return None

    def decide(self, doc: Doc, w: Wallet) -> Plan[Changes]:
        if core.session_open(w, self.supi, self.session_id):
            new, changes = core.close_session(w, self.supi, self.session_id, self.now,
                                              self.retention)
        elif note_of(doc, self.session_id) is not None:
            new, changes = w, ()  # only the note to remove
        else:
            return Plan(())
        return Plan(changes, new, changes,
                    note_extra(doc, self.session_id, None, self.now, self.note_grace))


def note_of(doc: Doc, session_id: str) -> Doc | None:
    """The note of session ``session_id`` in a wallet document, if it holds one."""
    n = (doc.get(notes.NOTES) or {}).get(session_id)
    return n if isinstance(n, dict) else None


def note_extra(doc: Doc, session_id: str, note: Doc | None, now: datetime,
               grace: timedelta, fx: tuple[Doc, ...] = ()) -> Extra | None:
    """What a write carries for the notes: the note of ``session_id`` set (or dropped,
    with None), and the stale notes of other sessions dropped (``nf.ledger.notes``)."""
    st, un = notes.write(doc.get(notes.NOTES) or {}, session_id, note, doc.get(notes.DUE),
                         now, grace)
    return Extra(set=st, unset=un, fx=fx) if st or un or fx else None
