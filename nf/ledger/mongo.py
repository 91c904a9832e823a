"""``MongoLedger``: the ``Ledger`` port on MongoDB, one document per wallet.

Built in layers, one job each: ``repo`` (reading, deciding and conditionally writing one
wallet document, the per-process copies, the family fence and its repair; see there for
the concurrency design), ``groups`` (family groups), ``subscribers`` (provisioning), and
here the charging port and the sweeps. Counter changes of every write leave as pending
effects of the same update (``nf.ledger.effects``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from nf.errors import Congestion
from nf.ledger import core, marks, notes
from nf.ledger.codec import (
    Doc,
    session_prefix,
    sub_key,
)
from nf.ledger.port import (
    BalanceView,
    BucketView,
    ChargeOutcome,
    ChargeStep,
    CounterChange,
    Noted,
    NoteFn,
    SubscriberView,
)
from nf.ledger.repo import (
    COLLECTION,
    DOC_CACHE,
    NOTES,
    Extra,
    same_changes,
)
from nf.ledger.state import Member, Wallet
from nf.ledger.subscribers import NewSubscriber, SubscriberOps
from nf.store.mongo import translate_errors


class MongoLedger(SubscriberOps):
    """The balance manager on MongoDB. Implements ``nf.ledger.port.Ledger``."""

    def usage_pct(self, offer_id: str) -> tuple[int, ...]:
        """Usage-notice percentages of an offer: its own, else its brand's."""
        cat = self._catalog.current
        found = cat.offer(offer_id)
        if found is None:
            return ()
        own = getattr(found[1], "notify_usage_pct", None)
        brand = cat.brand(found[0])
        return tuple(own if own is not None else brand.notify_usage_pct if brand else ())

    # --------------------------------------------------------------------- the port

    async def charge(self, step: ChargeStep) -> ChargeOutcome:
        """One step alone; its outcome carries every counter change of the write (usage
        notices included)."""
        got = await self._charge_request(step.supi, step.session_id, (step,), step.now)
        assert isinstance(got, tuple)
        return replace(got[0][0], counter_changes=got[1])

    async def charge_request(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                             now: datetime, *, close: bool = False
                             ) -> tuple[ChargeOutcome, ...]:
        got = await self._charge_request(supi, session_id, steps, now, close=close)
        assert isinstance(got, tuple)
        return got[0]

    async def charge_noted(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                           now: datetime, *, expect_isn: int | None, isn: int,
                           note: NoteFn) -> Noted | None:
        got = await self._charge_request(supi, session_id, steps, now,
                                         noted=(expect_isn, isn, note))
        return got if isinstance(got, Noted) else None

    async def _charge_request(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                              now: datetime, *, close: bool = False,
                              noted: tuple[int | None, int, NoteFn] | None = None
                              ) -> Noted | _Request | None:
        """``charge_request`` (the outcomes, the counter changes), and with ``noted``
        ``charge_noted``: (the note's expected sequence number, the request's, the note and
        EDR entries from the outcomes)."""
        unknown = tuple(core.unknown_outcome() for _ in steps)
        if not steps and not close and noted is None:
            return (), (), ""
        keys = {sub_key(s.supi, s.session_id, s.rating_group) for s in steps}
        prefix = session_prefix(supi, session_id)
        pick: Callable[[str], bool] = ((lambda k: k.startswith(prefix)) if close
                                       else keys.__contains__)
        m_net = self._plmns
        seen = _Seen()

        def fn(w: Wallet) -> tuple[Wallet | None, _Request]:
            m = w.member(supi)
            if m is None:
                return None, (unknown, (), "")  # no wallet id: nothing to write
            new, outs, changes = core.charge_request(
                w, steps, m_net.get(m.home_network, frozenset()), self._retention,
                (supi, session_id, now) if close else None)
            if new is w:
                # Nothing changed in the wallet; a noted step still writes its note, a close
                # still removes it.
                write = noted is not None or (close and seen.note)
                return (w if write else None), (outs, changes, w.id)
            # Usage thresholds crossed (subscriber notices) travel with the counter changes.
            return new, (outs, marks.with_usage(w, new, supi, now, changes, self.usage_pct),
                         w.id)

        def peek(doc: Doc) -> _Request | None:
            n = _note_of(doc, session_id)
            seen.note = n is not None
            if noted is None:
                return None
            # The note is not where the caller's copy of the session says: write nothing.
            if (n is None) != (noted[0] is None) or (n is not None and n.get("i") != noted[0]):
                return _MISMATCH
            return None

        def extra(doc: Doc, r: _Request) -> Extra | None:
            if noted is not None:
                if not r[2]:
                    return None
                body, fx = noted[2](r[0])
                return self._note_write(doc, session_id, {**body, "i": noted[1], "s": supi},
                                        now, tuple(fx))
            return self._note_write(doc, session_id, None, now) if close else None

        # A step already applied is recognised by its sequence number: batched writes.
        got = await self._mutate(supi, now, fn, _changes_of, pick=pick, peek=peek,
                                 extra=extra, batched=bool(steps))
        if noted is None:
            return got if got is not None else (unknown, (), "")
        if got is _MISMATCH:
            return None
        if got is None or not got[2]:
            return Noted(unknown, "")  # no such subscriber: nothing written
        return Noted(got[0], got[2])

    async def read_note(self, supi: str, session_id: str, now: datetime, *,
                        fresh: bool = True) -> Doc | None:
        doc = None if fresh else self._cached(supi)
        if doc is None:
            doc = await self._load_waiting(supi, now)
        n = _note_of(doc, session_id) if doc is not None else None
        return dict(n) if n is not None else None

    async def session_notes(self, supi: str, now: datetime) -> dict[str, Doc]:
        """Every note of ``supi``'s charging sessions on its wallet, by session id (for
        care: the note, not the session document, sees each update). One read."""
        doc = await self._load_waiting(supi, now)
        notes = (doc.get(NOTES) or {}) if doc is not None else {}
        return {k: dict(n) for k, n in notes.items()
                if isinstance(n, dict) and n.get("s") == supi}

    async def close_session(self, supi: str, session_id: str, now: datetime
                            ) -> tuple[CounterChange, ...]:
        prefix = session_prefix(supi, session_id)
        seen = _Seen()

        def peek(doc: Doc) -> tuple[CounterChange, ...] | None:
            seen.note = _note_of(doc, session_id) is not None
            return None

        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            if not core.session_open(w, supi, session_id):
                return (w if seen.note else None), ()  # only the note to remove
            return core.close_session(w, supi, session_id, now, self._retention)

        def extra(doc: Doc, _r: tuple[CounterChange, ...]) -> Extra | None:
            return self._note_write(doc, session_id, None, now)

        return await self._mutate(supi, now, fn, same_changes, pick=lambda k: k.startswith(prefix),
                                  peek=peek, extra=extra) or ()

    def _note_write(self, doc: Doc, session_id: str, note: Doc | None, now: datetime,
                    fx: tuple[Doc, ...] = ()) -> Extra | None:
        """What a write carries for the notes: the note of ``session_id`` set (or dropped,
        with None), and the stale notes of other sessions dropped (``nf.ledger.notes``)."""
        st, un = notes.write(doc.get(NOTES) or {}, session_id, note, doc.get(notes.DUE), now,
                             self._note_grace)
        return Extra(set=st, unset=un, fx=fx) if st or un or fx else None

    async def subscriber(self, supi: str, now: datetime) -> SubscriberView | None:
        got = await self._read(supi, now)
        return None if got is None else self._view(got[0], got[1], now)

    async def balance(self, supi: str, now: datetime) -> BalanceView | None:
        got = await self._read(supi, now)
        if got is None:
            return None
        w, m = got
        views = tuple(
            BucketView(bucket_id=b.id, kind=b.kind, offer_id=b.offer_id,
                       offer_version=b.offer_version, quota_bytes=b.quota,
                       used_bytes=b.used, reserved_bytes=b.reserved, valid_from=b.valid_from,
                       valid_to=b.valid_to, rating_groups=b.rating_groups, zone=b.zone)
            for b in w.buckets
            if (b.owner == supi or b.kind == "pool") and b.valid_at(now))
        return BalanceView(subscriber=self._view(w, m, now), buckets=views)

    async def wallet(self, supi: str, now: datetime) -> tuple[Wallet, Member] | None:
        """The raw state (for care, tests and invariant checks)."""
        return await self._read(supi, now, full=True)

    # ---------------------------------------------------------------------- sweepers

    async def sweep_due(self, which: str, now: datetime, limit: int
                        ) -> tuple[CounterChange, ...]:
        """Apply time to wallets whose ``due_res`` or ``due_life`` has passed; the
        reservation sweeper (``res``) also drops the session notes gone stale (``due_cs``).
        A wallet that time leaves unchanged is not rewritten (see ``_mutate_doc``)."""
        fields = ("due_res", notes.DUE) if which == "res" else ("due_life",)
        keys: dict[str, None] = {}
        async with translate_errors("ledger sweep"):
            for field in fields:
                keys.update([(d["_id"], None) async for d in self._col.find(
                    {field: {"$lte": now}}, {"_id": 1}).limit(limit)])
        out: list[CounterChange] = []
        for key in keys:
            def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
                new, changes = core.sweep(w, now, self._retention)
                return (None if new == w and not changes else new), changes

            try:
                got = await self._mutate_doc(key, now, fn, same_changes, skip_busy=True,
                                             tidy=True)
            except Congestion:
                continue  # busy wallets are swept by their own traffic; next round
            out.extend(got or ())
        return tuple(out)


def _note_of(doc: Doc, session_id: str) -> Doc | None:
    """The note of session ``session_id`` in a wallet document, if it holds one."""
    n = (doc.get(NOTES) or {}).get(session_id)
    return n if isinstance(n, dict) else None


class _Seen:
    """What ``peek`` saw in the raw document, for the decision that follows it."""

    note = False


# (one outcome per step, the counter changes, the id of the wallet written; "": the
# subscriber is not in it)
_Request = tuple[tuple[ChargeOutcome, ...], tuple[CounterChange, ...], str]
_MISMATCH: _Request = ((), (), "<note mismatch>")  # what peek answers: nothing written


def _changes_of(r: _Request) -> tuple[CounterChange, ...]:
    return r[1]


__all__ = ["COLLECTION", "DOC_CACHE", "MongoLedger", "NewSubscriber"]
