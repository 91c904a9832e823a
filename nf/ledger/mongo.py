"""``MongoLedger``: the ``Ledger`` port on MongoDB, one document per wallet: the one object
the wiring builds, made of a repository and functions.

Its parts, one job each: ``repo`` (reading and conditionally writing one wallet document,
the retry loop, this process's copies; see there for the concurrency design), ``steps``
(the charging steps' decisions, as values), ``reads`` (views, balance, notes), ``groups``
(family groups), ``subscribers`` (provisioning), ``fence`` (family moves). Here: the
charging port and the sweeps. Counter changes of every write leave as pending effects of
the same update (``nf.ledger.effects``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from nf.catalog import CatalogHolder
from nf.clock import Clock
from nf.config import Settings
from nf.effects import Drain
from nf.errors import Congestion
from nf.ledger import core, groups, notes, reads, subscribers
from nf.ledger.codec import Doc, Pick, session_prefix, sub_key
from nf.ledger.copies import DOC_CACHE
from nf.ledger.port import (
    BalanceView,
    ChargeOutcome,
    ChargeStep,
    CounterChange,
    Noted,
    NoteFn,
    Speed,
    SubscriberStatus,
    SubscriberView,
)
from nf.ledger.repo import COLLECTION, LedgerMetrics, WalletRepo
from nf.ledger.state import Member, Wallet
from nf.ledger.steps import Charged, ChargeRequest, CloseSession, NoteSpec, Stale
from nf.ledger.subscribers import NewSubscriber
from nf.store.batch import UpdateBatcher
from nf.store.mongo import Db, translate_errors

T = TypeVar("T")


class MongoLedger:
    """The balance manager on MongoDB. Implements ``nf.ledger.port.Ledger``."""

    def __init__(self, db: Db, settings: Settings, catalog: CatalogHolder, *,
                 metrics: LedgerMetrics | None = None, local_locks: bool = True,
                 doc_cache: int = DOC_CACHE, effects: Drain[CounterChange] | None = None,
                 clock: Clock | None = None) -> None:
        self.repo = WalletRepo(db, settings, metrics=metrics, local_locks=local_locks,
                               doc_cache=doc_cache, effects=effects, clock=clock)
        self._catalog = catalog
        self._effects = effects

    @property
    def catalog(self) -> CatalogHolder:
        return self._catalog

    @property
    def writes(self) -> UpdateBatcher:
        return self.repo.writes

    async def ensure_indexes(self) -> None:
        await self.repo.ensure_indexes()

    async def run_writes(self, stopping: asyncio.Event) -> None:
        """The worker that writes charging steps in batches (until ``stopping``)."""
        await self.repo.writes.run(stopping)

    def usage_pct(self, offer_id: str) -> tuple[int, ...]:
        """Usage-notice percentages of an offer: its own, else its brand's."""
        cat = self._catalog.current
        found = cat.offer(offer_id)
        if found is None:
            return ()
        own = getattr(found[1], "notify_usage_pct", None)
        brand = cat.brand(found[0])
        return tuple(own if own is not None else brand.notify_usage_pct if brand else ())

    # ------------------------------------------------------------------- charging port

    async def charge(self, step: ChargeStep) -> ChargeOutcome:
        """One step alone; its outcome carries every counter change of the write (usage
        notices included)."""
        got: Charged[None] | Stale = await self._charge(step.supi, step.session_id, (step,),
                                                        step.now)
        assert not isinstance(got, Stale)
        return replace(got.outcomes[0], counter_changes=got.changes)

    async def charge_request(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                             now: datetime, *, close: bool = False
                             ) -> tuple[ChargeOutcome, ...]:
        got: Charged[None] | Stale = await self._charge(supi, session_id, steps, now,
                                                        close=close)
        assert not isinstance(got, Stale)
        return got.outcomes

    async def charge_noted(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                           now: datetime, *, expect_isn: int | None, isn: int,
                           note: NoteFn[T]) -> Noted[T] | None:
        got = await self._charge(supi, session_id, steps, now,
                                 note=NoteSpec(expect_isn, isn, note))
        if isinstance(got, Stale):
            return None
        return Noted(got.outcomes, got.written)

    async def _charge(self, supi: str, session_id: str, steps: Sequence[ChargeStep],
                      now: datetime, *, close: bool = False,
                      note: NoteSpec[T] | None = None) -> Charged[T] | Stale:
        """Every step of one charging request in one conditional write (``steps``)."""
        unknown: Charged[T] = Charged(tuple(core.unknown_outcome() for _ in steps))
        if not steps and not close and note is None:
            return unknown
        repo = self.repo
        keys = {sub_key(s.supi, s.session_id, s.rating_group) for s in steps}
        prefix = session_prefix(supi, session_id)
        pick: Pick = (lambda k: k.startswith(prefix)) if close else keys.__contains__
        step: ChargeRequest[T] = ChargeRequest(
            supi, session_id, steps, now, repo.plmns, repo.retention, repo.note_grace,
            self.usage_pct, close=close, note=note)
        # A step already applied is recognised by its sequence number: batched writes.
        got = await repo.mutate(supi, now, step, pick=pick, batched=bool(steps))
        return unknown if got is None else got

    async def read_note(self, supi: str, session_id: str, now: datetime, *,
                        fresh: bool = True) -> Doc | None:
        return await reads.read_note(self.repo, supi, session_id, now, fresh=fresh)

    async def session_notes(self, supi: str, now: datetime) -> dict[str, Doc]:
        return await reads.session_notes(self.repo, supi, now)

    async def close_session(self, supi: str, session_id: str, now: datetime
                            ) -> tuple[CounterChange, ...]:
        repo = self.repo
        prefix = session_prefix(supi, session_id)
        step = CloseSession(supi, session_id, now, repo.retention, repo.note_grace)
        return await repo.mutate(supi, now, step,
                                 pick=lambda k: k.startswith(prefix)) or ()

    # ------------------------------------------------------------------------ reading

    async def subscriber(self, supi: str, now: datetime) -> SubscriberView | None:
        return await reads.subscriber(self.repo, self._catalog, supi, now)

    async def supi_of_gpsi(self, gpsi: str) -> str | None:
        return await reads.supi_of_gpsi(self.repo, gpsi)

    async def balance(self, supi: str, now: datetime) -> BalanceView | None:
        return await reads.balance(self.repo, self._catalog, supi, now)

    async def wallet(self, supi: str, now: datetime) -> tuple[Wallet, Member] | None:
        """The raw state (for care, tests and invariant checks)."""
        return await reads.read(self.repo, supi, now, full=True)

    async def group(self, group_id: str, now: datetime) -> Wallet | None:
        return await groups.group(self.repo, group_id, now)

    # ------------------------------------------------------------------- provisioning

    async def create_subscriber(self, s: NewSubscriber, now: datetime) -> SubscriberView:
        return await subscribers.create_subscriber(self.repo, self._catalog, s, now)

    async def bulk_create_subscribers(self, subs: Iterable[NewSubscriber], now: datetime,
                                      batch: int = 1000) -> int:
        """Insert many subscribers fast (existing SUPIs are skipped); returns how many were
        created."""
        return await subscribers.bulk_create_subscribers(self.repo, self._catalog, subs, now,
                                                         batch)

    async def set_status(self, supi: str, status: SubscriberStatus, now: datetime
                         ) -> tuple[CounterChange, ...]:
        return await subscribers.set_status(self.repo, supi, status, now)

    async def set_fraud_speed(self, supi: str, fraud_speed: Speed | None, now: datetime
                              ) -> tuple[CounterChange, ...]:
        """Throttle a subscriber for fraud, or lift it (None). Idempotent."""
        return await subscribers.set_fraud_speed(self.repo, supi, fraud_speed, now)

    async def purchase(self, supi: str, offer_id: str, now: datetime
                       ) -> tuple[CounterChange, ...]:
        """Buy an offer of the subscriber's brand. A family plan creates a group with the
        buyer as its first member."""
        return await subscribers.purchase(self.repo, self._catalog, supi, offer_id, now)

    async def delete_subscriber(self, supi: str, now: datetime) -> bool:
        return await subscribers.delete_subscriber(self.repo, supi, now)

    async def create_group(self, owner: str, offer_id: str, now: datetime,
                           group_id: str | None = None, *, bought: bool = False) -> str:
        """Create a family group bought by ``owner`` (not joined); returns the group id."""
        return await groups.create_group(self.repo, self._catalog, owner, offer_id, now,
                                         group_id, bought=bought)

    async def join_group(self, supi: str, group_id: str, now: datetime,
                         cap_bytes: int | None = None) -> tuple[CounterChange, ...]:
        return await groups.join_group(self.repo, self._catalog, supi, group_id, now,
                                       cap_bytes)

    async def leave_group(self, supi: str, now: datetime) -> tuple[CounterChange, ...]:
        return await groups.leave_group(self.repo, supi, now)

    async def set_member_cap(self, supi: str, cap_bytes: int | None, now: datetime
                             ) -> tuple[CounterChange, ...]:
        return await subscribers.set_member_cap(self.repo, supi, cap_bytes, now)

    # ----------------------------------------------------------------------- sweepers

    async def sweep_due(self, which: str, now: datetime, limit: int
                        ) -> tuple[CounterChange, ...]:
        """Apply time to wallets whose ``due_res`` or ``due_life`` has passed; the
        reservation sweeper (``res``) also drops the session notes gone stale (``due_cs``).
        A wallet that time leaves unchanged is not rewritten (see ``mutate_doc``)."""
        repo = self.repo
        fields = ("due_res", notes.DUE) if which == "res" else ("due_life",)
        keys: dict[str, None] = {}
        async with translate_errors("ledger sweep"):
            for field in fields:
                keys.update([(d["_id"], None) async for d in repo.col.find(
                    {field: {"$lte": now}}, {"_id": 1}).limit(limit)])

        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            new, changes = core.sweep(w, now, repo.retention)
            return (None if new == w and not changes else new), changes

        out: list[CounterChange] = []
        for key in keys:
            try:
                got = await repo.mutate_doc(key, now, fn, skip_busy=True, tidy=True)
            except Congestion:
                continue  # busy wallets are swept by their own traffic; next round
            out.extend(got or ())
        return tuple(out)


__all__ = ["COLLECTION", "DOC_CACHE", "MongoLedger", "NewSubscriber"]
