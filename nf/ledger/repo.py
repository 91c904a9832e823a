"""The wallet repository: one document per wallet, read, decided and written back
conditionally; the retry loop that every ledger operation runs through.

Every operation is: read the wallet document, let a step decide (``nf.ledger.steps``, over
``nf.ledger.core``), write back what changed with ``update_one({_id, v: version}, {$set,
$unset})`` (or ``replace_one`` for whole-wallet moves); if another writer got there first,
read again and decide again (bounded, with jittered backoff on the injected clock). When
nothing is due in the wallet (``due_res`` and ``due_life`` lie ahead), a charge or a close
decodes only the reservations and sequence records of its own session (a *partial*
wallet); ``due_res`` then stays a lower bound (the sweeper or the next full decode makes
it exact). No multi-document transactions: all a charge touches is in one document. A
subscriber alone owns the wallet whose ``_id`` is their SUPI; a family member's document
is a pointer (``kind: ptr``) to the group's wallet; each process remembers the member ->
group mapping and reads the group directly (``{_id: group, supis: member}``), falling
back to the pointer when the member is not there any more. Joining or leaving a group
moves the member between two documents behind a fence (``nf.ledger.fence``).

Each process also keeps the documents it last read or wrote (a bounded LRU, updated in
place with exactly what it wrote). A charge or a close decides from that copy and writes
with the version condition, so a warm step is one round trip; if anyone else wrote the
wallet meanwhile the write matches nothing and the step reads and decides again. A
decision that writes nothing (a replay, nothing to close) is only trusted from a fresh
read. Versions start at a random number, so a deleted and re-created wallet never shows a
version an old copy could match.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import bson
from pymongo import ASCENDING

from nf import logs
from nf.clock import Clock, SystemClock, utc
from nf.config import Settings
from nf.effects import FIELD as FX
from nf.effects import Drain, entry
from nf.errors import Congestion
from nf.ledger import core
from nf.ledger import notes as session_notes
from nf.ledger.codec import Doc, Pick, update_doc, wallet_doc, wallet_from
from nf.ledger.copies import DOC_CACHE, HELD, Copies, KeyLocks, NoLocks, apply
from nf.ledger.effects import WALLETS, change_doc
from nf.ledger.fence import Busy, repair_if_stale
from nf.ledger.port import CounterChange
from nf.ledger.state import Wallet
from nf.ledger.steps import Changes, Extra, Step
from nf.store.batch import TOKEN, UpdateBatcher
from nf.store.mongo import Db, money_collection, translate_errors

log = logging.getLogger("nf.ledger")
R = TypeVar("R")
COLLECTION = WALLETS
# The CHF's notes of its charging sessions on this wallet: {ChargingDataRef: note}, written
# by the same update as the session's reservations (see ``nf.ledger.steps``) and dropped
# when stale (``nf.ledger.notes``).
NOTES = session_notes.NOTES


class _Count(Protocol):
    def inc(self) -> None: ...


class LedgerMetrics(Protocol):
    """The counters the repository moves (the runtime's metrics hold them)."""

    @property
    def ledger_conflicts(self) -> _Count: ...

    @property
    def effects_backlog_full(self) -> _Count: ...


def first_version() -> int:
    return random.SystemRandom().randrange(1, 2 ** 52)


def new_bucket_id() -> str:
    return uuid.uuid4().hex[:12]


def _quiet(doc: Doc, now: datetime) -> bool:
    """Nothing in the wallet is due: time alone would change nothing (see ``core.due``)."""
    dr, dl = doc.get("due_res"), doc.get("due_life")
    return (dr is None or utc(dr) > now) and (dl is None or utc(dl) > now)


def _same_time(stored: Any, want: datetime | None) -> bool:
    return want is None if stored is None else want is not None and utc(stored) == want


class WalletRepo:
    """Reading and conditionally writing wallet documents, with this process's copies."""

    def __init__(self, db: Db, settings: Settings, *, metrics: LedgerMetrics | None = None,
                 local_locks: bool = True, doc_cache: int = DOC_CACHE,
                 effects: Drain[CounterChange] | None = None,
                 clock: Clock | None = None) -> None:
        self.col = money_collection(db, COLLECTION)
        self._opts = self.col.codec_options
        self.copies = Copies(doc_cache)
        self.settings = settings
        self._metrics = metrics
        self._clock: Clock = clock or SystemClock()
        # Counter changes are written as pending entries of the same update and handed to
        # this drain (``nf.effects``); without one they are only returned to the caller.
        self.effects = effects
        self.retention = timedelta(seconds=settings.ledger.seq_retention_s)
        self.note_grace = timedelta(seconds=settings.ledger.note_grace_s)
        self._fx_max = settings.effects.max_pending_per_doc
        self.attempts = settings.ledger.max_write_attempts
        self._locks: KeyLocks | NoLocks = KeyLocks() if local_locks else NoLocks()
        self._rng = random.Random()
        self.plmns: dict[str, frozenset[str]] = {
            n.id: frozenset(n.plmn_ids) for n in settings.networks}
        # Charging steps' writes travel together (``nf.store.batch``) while ``run_writes``
        # runs (the ledger part's worker); otherwise each is written on its own.
        cfg = settings.ledger
        self.writes = UpdateBatcher(self.col, batch_max=cfg.write_batch_max,
                                    in_flight_max=cfg.write_batches_in_flight,
                                    queue_max=cfg.write_queue_max, what="ledger write")

    async def ensure_indexes(self) -> None:
        async with translate_errors("ledger index creation"):
            await self.col.create_index([("supis", ASCENDING)], name="supis")
            await self.col.create_index([("brands", ASCENDING)], name="brands")
            await self.col.create_index([("due_res", ASCENDING)], name="due_res", sparse=True)
            await self.col.create_index([("due_life", ASCENDING)], name="due_life",
                                        sparse=True)
            await self.col.create_index([(session_notes.DUE, ASCENDING)],
                                        name=session_notes.DUE, sparse=True)
            # By MSISDN (Gy's END_USER_E164, the console): the console's name kept.
            await self.col.create_index([("members.gpsi", ASCENDING)], name="console_gpsi")

    # ---------------------------------------------------------------------------- reading

    async def find(self, key: str) -> Doc | None:
        async with translate_errors("ledger read"):
            return await self.col.find_one({"_id": key})

    async def load(self, supi: str, now: datetime) -> Doc | None:
        """The wallet document holding ``supi`` (following a pointer), or None."""
        copies = self.copies
        home = copies.hinted(supi)
        if home is not None:
            async with translate_errors("ledger read"):
                g = await self.col.find_one({"_id": home, "supis": supi})
            if g is not None:
                copies.remember(g)
                return g
            copies.drop_home(supi)  # left the group: read the pointer again
            copies.forget(home)
        doc = await self.find(supi)
        if doc is None:
            return None
        if doc.get("moving"):
            await repair_if_stale(self.col, doc, now)
            raise Busy
        if doc.get("kind") == "ptr":
            g = await self.find(doc["home"])
            if g is None or supi not in g.get("supis", ()):
                raise Busy  # mid-move; the fence is being lifted
            copies.set_home(supi, g["_id"])
            copies.remember(g)
            return g
        copies.remember(doc)
        return doc

    async def load_waiting(self, supi: str, now: datetime, attempt: int = 0,
                           tries: Iterator[int] | None = None) -> Doc | None:
        """``load``, waiting out a join/leave in progress (``Busy``) with backoff: this try
        is ``attempt``, the next ones come from ``tries`` (default: the configured number
        of attempts). ``Congestion`` when they run out."""
        if tries is None:
            tries = iter(range(attempt + 1, self.attempts))
        while True:
            try:
                return await self.load(supi, now)
            except Busy:
                await self.backoff(attempt)
            nxt = next(tries, None)
            if nxt is None:
                raise Congestion(f"ledger: {supi} is being moved; retry")
            attempt = nxt

    # ------------------------------------------------------------------ pending effects

    def fx(self, changes: Sequence[CounterChange], now: datetime) -> list[Doc]:
        """Counter changes as pending entries (none without a drain)."""
        if self.effects is None or not changes:
            return []
        return [entry(change_doc(c), now) for c in changes]

    def hand_off(self, key: str, fx: list[Doc]) -> None:
        if fx and self.effects is not None:
            self.effects.hand_off(key, fx)

    def carried(self, doc: Doc) -> list[Doc]:
        """The pending entries of ``doc`` a replacement must keep."""
        fx = list(doc.get(FX) or ())
        return self.effects.unsettled(fx) if self.effects is not None and fx else fx

    def _check_backlog(self, key: str, held: int, pushed: int) -> None:
        """Refuse a write that would leave more than ``effects.max_pending_per_doc``
        pending entries on the wallet (``Congestion``: 503, the peer retries later).

        The entries are undelivered counter changes and EDRs; they pile up only when
        their delivery fails (a listener down, the ``edrs`` store unavailable). Dropping
        or truncating them would lose an EDR or a throttle, and growing the array without
        bound grows every write of the wallet; refusing the step keeps the money and its
        record together: nothing is charged that is not recorded. The count comes from
        the document the write is conditional on (its version), so it is exact except
        for deliveries acknowledged since, which only lower it; a refusal from a
        process's copy is confirmed on a fresh read first (``mutate``)."""
        if pushed and held + pushed > self._fx_max:
            if self._metrics is not None:
                self._metrics.effects_backlog_full.inc()
            logs.log(log, logging.WARNING, "pending effects backlog full: write refused",
                     wallet=key, pending=held, max=self._fx_max)
            raise Congestion(f"ledger: {held} effects of wallet {key} are still pending; "
                             "retry later")

    # ---------------------------------------------------------------------------- writing

    async def _update(self, doc: Doc, old: Wallet, new: Wallet, now: datetime,
                      partial: bool, fx: list[Doc], extra: Extra | None,
                      batched: bool) -> bool:
        """Write what changed from ``old`` (read as ``doc``) to ``new``, if nobody wrote the
        wallet since; ``fx``: pending counter changes pushed by the same update; ``extra``:
        what else the same update writes. ``batched``: the write may travel with others
        (only for steps that a second decision recognises as done: see
        ``nf.store.batch``)."""
        due_res, due_life = core.due(new, now)
        if partial and doc.get("due_res") is not None:
            # Reservations left out of a partial wallet expire no earlier than before.
            old_due = utc(doc["due_res"])
            due_res = old_due if due_res is None else min(due_res, old_due)
        upd = update_doc(old, new, due_res, due_life)
        pushed = [*fx, *(extra.fx if extra is not None else ())]
        if pushed:
            upd["$push"] = {FX: {"$each": pushed}}
        if extra is not None:
            upd["$set"].update(extra.set)
            if extra.unset:
                upd.setdefault("$unset", {}).update(dict.fromkeys(extra.unset, ""))
        self.copies.forget(old.id)
        token = self.writes.token() if batched else None
        if token is not None:
            upd["$set"][TOKEN] = token
        if not await self.writes.update(old.id, {"_id": old.id, "v": old.version}, upd,
                                        token):
            return False
        # Keep the copy in step with what was stored (as the server encodes it: the C
        # codec's round trip is cheaper than normalising the values in Python).
        stored = bson.decode(bson.encode({"s": upd["$set"]}, codec_options=self._opts),
                             codec_options=self._opts)["s"]
        apply(doc, stored, upd.get("$unset", {}))
        self.copies.remember(doc)
        self.hand_off(old.id, fx)
        return True

    async def replace(self, w: Wallet, expected_v: int, now: datetime,
                      carry: list[Doc] | None = None, fx: list[Doc] | None = None,
                      notes: Doc | None = None) -> bool:
        """Replace the wallet if nobody wrote it since; ``carry``: the pending entries the
        stored document holds, ``fx``: new ones; ``notes``: its session notes (kept)."""
        due_res, due_life = core.due(w, now)
        doc = wallet_doc(replace(w, version=expected_v + 1), due_res, due_life)
        if carry or fx:
            doc[FX] = [*(carry or ()), *(fx or ())]
        if notes:
            doc[NOTES] = notes
            doc[session_notes.DUE] = session_notes.due(notes, self.note_grace)
        self.copies.forget(w.id)
        async with translate_errors("ledger write"):
            r = await self.col.replace_one({"_id": w.id, "v": expected_v}, doc)
        if r.matched_count != 1:
            return False
        self.hand_off(w.id, fx or [])
        return True

    async def backoff(self, attempt: int) -> None:
        """Wait a little (jittered, growing with ``attempt``) before trying a write again;
        on the injected clock."""
        if self._metrics is not None:
            self._metrics.ledger_conflicts.inc()
        await self._clock.sleep(self._rng.uniform(0, min(0.02, 0.0002 * 2 ** min(attempt, 7))))

    async def mutate(self, supi: str, now: datetime, step: Step[R], *,
                     pick: Pick | None = None, batched: bool = False) -> R | None:
        """Apply ``step`` to the subscriber's wallet atomically; None if unknown.

        ``pick``: the only reservations/sequence records the step may touch, when nothing
        is due (a partial wallet).
        ``batched``: the write may travel with others' (the step must recognise a step
        it already applied, so a write that landed unseen is answered, not applied
        again)."""
        # Family members known to share a wallet queue on it, not on their SUPI.
        async with self._locks.hold(self.copies.home(supi)):
            fresh = False
            tries = iter(range(self.attempts))
            for attempt in tries:
                doc = None if fresh else self.copies.cached(supi)
                if doc is None:
                    fresh = True
                    # A move in progress takes its waits from the same tries.
                    doc = await self.load_waiting(supi, now, attempt, tries)
                    if doc is None:
                        return None
                early = step.early(doc)
                if early is not None:
                    if fresh:
                        return early
                    fresh = True  # confirm on a fresh read
                    continue
                partial = pick is not None and _quiet(doc, now)
                w = wallet_from(doc, pick if partial else None)
                plan = step.decide(doc, w)
                if plan.wallet is None:
                    if fresh:
                        return plan.result
                    fresh = True  # writes nothing: confirm on a fresh read
                    continue
                fx = self.fx(plan.changes, now)
                more = plan.extra
                pushed = len(fx) + (len(more.fx) if more is not None else 0)
                held = doc.get(HELD, len(doc.get(FX) or ()))
                if pushed and held + pushed > self._fx_max and not fresh:
                    fresh = True  # deliveries may have emptied it since: read again
                    continue
                self._check_backlog(w.id, held, pushed)
                if await self._update(doc, w, plan.wallet, now, partial, fx, more, batched):
                    if pushed:  # the copy counts what it pushed (not the entries)
                        doc[HELD] = held + pushed
                    return plan.result
                if not fresh:
                    fresh = True  # the copy was stale: no backoff, just read
                    continue
                await self.backoff(attempt)
        raise Congestion(f"ledger: too many concurrent writes for {supi}; retry")

    async def mutate_doc(self, key: str, now: datetime,
                         fn: Callable[[Wallet], tuple[Wallet | None, Changes]],
                         skip_busy: bool = False, add_notes: Doc | None = None,
                         tidy: bool = False) -> Changes | None:
        """Like ``mutate`` for a wallet addressed by its own id (groups, sweepers), read
        afresh and replaced whole; ``fn`` answers the wallet to write (None: nothing) and
        the counter changes. ``add_notes``: session notes to keep in it besides its own (a
        member joining); the stale notes are dropped (``nf.ledger.notes``). With ``tidy``
        (the sweepers), a wallet that ``fn`` leaves as it is (None) is not replaced: only
        stale notes make it a write, otherwise at most its due times are set."""
        for attempt in range(self.attempts):
            doc = await self.find(key)
            if doc is None or doc.get("kind") == "ptr":
                return None
            if doc.get("moving"):
                await repair_if_stale(self.col, doc, now)
                if skip_busy:
                    return None
                await self.backoff(attempt)
                continue
            w = wallet_from(doc)
            new, changes = fn(w)
            held = {**(doc.get(NOTES) or {}), **(add_notes or {})}
            kept = session_notes.live(held, now, self.note_grace)
            if new is None and tidy:
                if len(kept) == len(held):
                    await self._set_due(doc, w, kept, now)
                    return changes
                new = w  # only stale notes to drop
            if new is None:
                return changes
            carried, fx = self.carried(doc), self.fx(changes, now)
            self._check_backlog(key, len(carried), len(fx))
            if await self.replace(new, w.version, now, carried, fx, kept):
                return changes
            await self.backoff(attempt)
        raise Congestion(f"ledger: too many concurrent writes for {key}; retry")

    async def _set_due(self, doc: Doc, w: Wallet, notes: Doc, now: datetime) -> None:
        """Store the due times of a wallet that time left unchanged, if they moved (a
        partial write leaves ``due_res`` a lower bound): a ``$set`` of those fields alone,
        without a new version, so no process's copy of the wallet is made stale by it (a
        copy's older due times are earlier ones: a lower bound still)."""
        due_res, due_life = core.due(w, now)
        want = {"due_res": due_res, "due_life": due_life,
                session_notes.DUE: session_notes.due(notes, self.note_grace)}
        if all(_same_time(doc.get(k), v) for k, v in want.items()):
            return
        async with translate_errors("ledger write"):
            await self.col.update_one({"_id": w.id, "v": w.version}, {"$set": want})
