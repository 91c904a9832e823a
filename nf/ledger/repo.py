"""The wallet repository under ``MongoLedger``: one document per wallet, read, decided and
written back conditionally.

Every operation is: read the wallet document, let ``nf.ledger.core`` decide, write back
what changed with ``update_one({_id, v: version}, {$set, $unset})`` (or ``replace_one``
for whole-wallet moves); if another writer got there first, read again and decide again
(bounded, with jittered backoff). When nothing is due in the wallet (``due_res`` and
``due_life`` lie ahead), a charge or a close decodes only the reservations and sequence
records of its own session (a *partial* wallet); ``due_res`` then stays a lower bound
(the sweeper or the next full decode makes it exact). No multi-document
transactions: all a charge touches is in one document. A subscriber alone owns the wallet
whose ``_id`` is their SUPI; a family member's document is a pointer (``kind: ptr``) to the
group's wallet; each process remembers the member -> group mapping and reads the group
directly (``{_id: group, supis: member}``), falling back to the pointer when the member is
not there any more. Joining or leaving a group moves the member between two documents with
a fence (``moving``) that makes other writers wait; a fence left by a crash is finished or
undone by whoever finds it stale.

Each process also keeps the documents it last read or wrote (a bounded LRU, updated in
place with exactly what it wrote). A charge or a close decides from that copy and writes
with the version condition, so a warm step is one round trip; if anyone else wrote the
wallet meanwhile the write matches nothing and the step reads and decides again. A
decision that writes nothing (a replay, nothing to close) is only trusted from a fresh
read. Versions start at a random number, so a deleted and re-created wallet never shows a
version an old copy could match.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import bson
from pymongo import ASCENDING

from nf import logs
from nf.catalog import CatalogHolder
from nf.clock import utc
from nf.config import Settings
from nf.effects import FIELD as FX
from nf.effects import Drain, entry
from nf.errors import Congestion
from nf.ledger import core
from nf.ledger import notes as session_notes
from nf.ledger.codec import (
    Doc,
    Pick,
    update_doc,
    wallet_doc,
    wallet_from,
)
from nf.ledger.effects import WALLETS, change_doc
from nf.ledger.port import (
    CapAction,
    CounterChange,
    SubscriberView,
)
from nf.ledger.state import Member, Wallet
from nf.sbi.metrics import Metrics
from nf.store.batch import TOKEN, UpdateBatcher
from nf.store.mongo import Db, money_collection, translate_errors

log = logging.getLogger("nf.ledger")
R = TypeVar("R")
COLLECTION = WALLETS
MOVE_STALE = timedelta(seconds=10)
HOMES_MAX = 200_000  # member -> group mappings remembered per process
DOC_CACHE = 10_000  # wallet documents remembered per process (LRU)
# The CHF's notes of its charging sessions on this wallet: {ChargingDataRef: note}, written
# by the same update as the session's reservations (see ``MongoLedger.charge_noted``) and
# dropped when stale (``nf.ledger.notes``).
NOTES = session_notes.NOTES
# In this process's copy of a wallet document: how many pending entries (``fx``) it holds
# at most, counting those this process pushed since it read it (the copy does not keep
# them; deliveries acknowledged since only lower the true number).
_HELD = "\x00fx_held"


def nothing(_k: str) -> bool:
    return False


def first_version() -> int:
    return random.SystemRandom().randrange(1, 2 ** 52)


def _put(doc: Doc, path: str, value: Any, unset: bool = False) -> None:
    """Apply one ``$set``/``$unset`` path to a document held in memory."""
    *parents, last = path.split(".")
    cur: Any = doc
    for p in parents:
        cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
    if isinstance(cur, list):
        cur[int(last)] = value
    elif unset:
        cur.pop(last, None)
    else:
        cur[last] = value


def _quiet(doc: Doc, now: datetime) -> bool:
    """Nothing in the wallet is due: time alone would change nothing (see ``core.due``)."""
    dr, dl = doc.get("due_res"), doc.get("due_life")
    return (dr is None or utc(dr) > now) and (dl is None or utc(dl) > now)


@dataclass(frozen=True)
class Extra:
    """What a wallet write carries besides the wallet's own change: fields set and unset
    as given (the CHF's session notes, ``cs.<ref>``) and pending entries of another kind
    than counter changes (the step's EDR), which the caller hands to their drain."""

    set: dict[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    fx: tuple[Doc, ...] = ()


class Busy(Exception):
    """The document is fenced by a join/leave in progress: wait and read again."""


class _KeyLocks:
    """Per-key asyncio locks so writers in one process queue instead of conflicting.
    Entries are dropped when nobody holds or waits for them (bounded by concurrency)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, n = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, n + 1)
        try:
            async with lock:
                yield
        finally:
            lock, n = self._locks[key]
            if n <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, n - 1)


class _NoLocks:
    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        yield


class WalletRepo:
    """Reading and conditionally writing wallet documents (``MongoLedger``'s base)."""

    def __init__(self, db: Db, settings: Settings, catalog: CatalogHolder, *,
                 metrics: Metrics | None = None, local_locks: bool = True,
                 doc_cache: int = DOC_CACHE,
                 effects: Drain[CounterChange] | None = None) -> None:
        self._col = money_collection(db, COLLECTION)
        self._opts = self._col.codec_options
        self._docs: OrderedDict[str, Doc] = OrderedDict()
        self._docs_max = doc_cache
        self._settings = settings
        self._catalog = catalog
        self._metrics = metrics
        # Counter changes are written as pending entries of the same update and handed to
        # this drain (``nf.effects``); without one they are only returned to the caller.
        self._effects = effects
        self._retention = timedelta(seconds=settings.ledger.seq_retention_s)
        self._note_grace = timedelta(seconds=settings.ledger.note_grace_s)
        self._fx_max = settings.effects.max_pending_per_doc
        self._attempts = settings.ledger.max_write_attempts
        self._locks: _KeyLocks | _NoLocks = _KeyLocks() if local_locks else _NoLocks()
        self._rng = random.Random()
        self._homes: dict[str, str] = {}  # family member -> group wallet id (a hint)
        self._plmns: dict[str, frozenset[str]] = {
            n.id: frozenset(n.plmn_ids) for n in settings.networks}
        # Charging steps' writes travel together (``nf.store.batch``) while ``run_writes``
        # runs (the ledger part's worker); otherwise each is written on its own.
        cfg = settings.ledger
        self.writes = UpdateBatcher(self._col, batch_max=cfg.write_batch_max,
                                    in_flight_max=cfg.write_batches_in_flight,
                                    queue_max=cfg.write_queue_max, what="ledger write")

    async def run_writes(self, stopping: asyncio.Event) -> None:
        """The worker that writes charging steps in batches (until ``stopping``)."""
        await self.writes.run(stopping)

    @property
    def catalog(self) -> CatalogHolder:
        return self._catalog

    async def ensure_indexes(self) -> None:
        async with translate_errors("ledger index creation"):
            await self._col.create_index([("supis", ASCENDING)], name="supis")
            await self._col.create_index([("brands", ASCENDING)], name="brands")
            await self._col.create_index([("due_res", ASCENDING)], name="due_res", sparse=True)
            await self._col.create_index([("due_life", ASCENDING)], name="due_life",
                                         sparse=True)
            await self._col.create_index([(session_notes.DUE, ASCENDING)],
                                         name=session_notes.DUE, sparse=True)

    # ---------------------------------------------------------------- reading and writing

    async def _find(self, key: str) -> Doc | None:
        async with translate_errors("ledger read"):
            return await self._col.find_one({"_id": key})

    def _remember(self, doc: Doc) -> None:
        if self._docs_max <= 0 or doc.get("kind") == "ptr" or doc.get("moving"):
            return
        self._docs[doc["_id"]] = doc
        self._docs.move_to_end(doc["_id"])
        while len(self._docs) > self._docs_max:
            self._docs.popitem(last=False)

    def _forget(self, key: str) -> None:
        self._docs.pop(key, None)

    def _cached(self, supi: str) -> Doc | None:
        """This process's last copy of the wallet holding ``supi`` (may be stale)."""
        doc = self._docs.get(self._homes.get(supi, supi))
        if doc is None or supi not in doc.get("supis", ()):
            return None
        return doc

    async def _load(self, supi: str, now: datetime) -> Doc | None:
        """The wallet document holding ``supi`` (following a pointer), or None."""
        home = self._homes.get(supi)
        if home is not None:
            async with translate_errors("ledger read"):
                g = await self._col.find_one({"_id": home, "supis": supi})
            if g is not None:
                self._remember(g)
                return g
            self._homes.pop(supi, None)  # left the group: read the pointer again
            self._forget(home)
        doc = await self._find(supi)
        if doc is None:
            return None
        if doc.get("moving"):
            await self._repair_if_stale(doc, now)
            raise Busy
        if doc.get("kind") == "ptr":
            g = await self._find(doc["home"])
            if g is None or supi not in g.get("supis", ()):
                raise Busy  # mid-move; the fence is being lifted
            if len(self._homes) >= HOMES_MAX:
                self._homes.clear()
            self._homes[supi] = g["_id"]
            self._remember(g)
            return g
        self._remember(doc)
        return doc

    def _fx(self, changes: Sequence[CounterChange], now: datetime) -> list[Doc]:
        if self._effects is None or not changes:
            return []
        return [entry(change_doc(c), now) for c in changes]

    def _hand_off(self, key: str, fx: list[Doc]) -> None:
        if fx and self._effects is not None:
            self._effects.hand_off(key, fx)

    def _carried(self, doc: Doc) -> list[Doc]:
        """The pending entries of ``doc`` a replacement must keep."""
        fx = list(doc.get(FX) or ())
        return self._effects.unsettled(fx) if self._effects is not None and fx else fx

    async def _update(self, doc: Doc, old: Wallet, new: Wallet, now: datetime,
                      partial: bool, fx: list[Doc] | None = None,
                      extra: Extra | None = None, batched: bool = False) -> bool:
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
        pushed = [*(fx or ()), *(extra.fx if extra is not None else ())]
        if pushed:
            upd["$push"] = {FX: {"$each": pushed}}
        if extra is not None:
            upd["$set"].update(extra.set)
            if extra.unset:
                upd.setdefault("$unset", {}).update(dict.fromkeys(extra.unset, ""))
        self._forget(old.id)
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
        for path, value in stored.items():
            _put(doc, path, value)
        for path in upd.get("$unset", {}):
            _put(doc, path, None, unset=True)
        self._remember(doc)
        self._hand_off(old.id, fx or [])
        return True

    async def _replace(self, w: Wallet, expected_v: int, now: datetime,
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
            doc[session_notes.DUE] = session_notes.due(notes, self._note_grace)
        self._forget(w.id)
        async with translate_errors("ledger write"):
            r = await self._col.replace_one({"_id": w.id, "v": expected_v}, doc)
        if r.matched_count != 1:
            return False
        self._hand_off(w.id, fx or [])
        return True

    async def _backoff(self, attempt: int) -> None:
        if self._metrics is not None:
            self._metrics.ledger_conflicts.inc()
        await asyncio.sleep(self._rng.uniform(0, min(0.02, 0.0002 * 2 ** min(attempt, 7))))

    async def _mutate(self, supi: str, now: datetime,
                      fn: Callable[[Wallet], tuple[Wallet | None, R]],
                      changes: Callable[[R], Sequence[CounterChange]], *,
                      pick: Pick | None = None,
                      peek: Callable[[Doc], R | None] | None = None,
                      extra: Callable[[Doc, R], Extra | None] | None = None,
                      batched: bool = False) -> R | None:
        """Apply ``fn`` to the subscriber's wallet atomically; None if unknown.

        ``changes``: the counter changes in ``fn``'s result, written as pending effects.

        ``pick``: the only reservations/sequence records ``fn`` may touch, when nothing is
        due (a partial wallet).
        ``peek``: answers from the raw document without decoding it (nothing to write).
        ``extra``: what the write carries besides the wallet (from the raw document and
        ``fn``'s result).
        ``batched``: the write may travel with others' (``fn`` must recognise a step it
        already applied, so a write that landed unseen is answered, not applied again)."""
        # Family members known to share a wallet queue on it, not on their SUPI.
        async with self._locks.hold(self._homes.get(supi, supi)):
            fresh = False
            tries = iter(range(self._attempts))
            for attempt in tries:
                doc = None if fresh else self._cached(supi)
                if doc is None:
                    fresh = True
                    # A move in progress takes its waits from the same tries.
                    doc = await self._load_waiting(supi, now, attempt, tries)
                    if doc is None:
                        return None
                if peek is not None:
                    early = peek(doc)
                    if early is not None:
                        if fresh:
                            return early
                        fresh = True  # confirm on a fresh read
                        continue
                partial = pick is not None and _quiet(doc, now)
                w = wallet_from(doc, pick if partial else None)
                new, result = fn(w)
                if new is None:
                    if fresh:
                        return result
                    fresh = True  # writes nothing: confirm on a fresh read
                    continue
                fx = self._fx(changes(result), now)
                more = extra(doc, result) if extra is not None else None
                pushed = len(fx) + (len(more.fx) if more is not None else 0)
                held = doc.get(_HELD, len(doc.get(FX) or ()))
                if pushed and held + pushed > self._fx_max and not fresh:
                    fresh = True  # deliveries may have emptied it since: read again
                    continue
                self._check_backlog(w.id, held, pushed)
                if await self._update(doc, w, new, now, partial, fx, more, batched):
                    if pushed:  # the copy counts what it pushed (not the entries)
                        doc[_HELD] = held + pushed
                    return result
                if not fresh:
                    fresh = True  # the copy was stale: no backoff, just read
                    continue
                await self._backoff(attempt)
        raise Congestion(f"ledger: too many concurrent writes for {supi}; retry")

    async def _mutate_doc(self, key: str, now: datetime,
                          fn: Callable[[Wallet], tuple[Wallet | None, R]],
                          changes: Callable[[R], Sequence[CounterChange]],
                          skip_busy: bool = False, add_notes: Doc | None = None,
                          tidy: bool = False) -> R | None:
        """Like ``_mutate`` for a wallet addressed by its own id (groups, sweepers);
        ``add_notes``: session notes to keep in it besides its own (a member joining); the
        stale notes are dropped (``nf.ledger.notes``). With ``tidy`` (the sweepers), a
        wallet that ``fn`` leaves as it is (None) is not replaced: only stale notes make
        it a write, otherwise at most its due times are set (``_set_due``)."""
        for attempt in range(self._attempts):
            doc = await self._find(key)
            if doc is None or doc.get("kind") == "ptr":
                return None
            if doc.get("moving"):
                await self._repair_if_stale(doc, now)
                if skip_busy:
                    return None
                await self._backoff(attempt)
                continue
            w = wallet_from(doc)
            new, result = fn(w)
            held = {**(doc.get(NOTES) or {}), **(add_notes or {})}
            kept = session_notes.live(held, now, self._note_grace)
            if new is None and tidy:
                if len(kept) == len(held):
                    await self._set_due(doc, w, kept, now)
                    return result
                new = w  # only stale notes to drop
            if new is None:
                return result
            carried, fx = self._carried(doc), self._fx(changes(result), now)
            self._check_backlog(key, len(carried), len(fx))
            if await self._replace(new, w.version, now, carried, fx, kept):
                return result
            await self._backoff(attempt)
        raise Congestion(f"ledger: too many concurrent writes for {key}; retry")

    async def _set_due(self, doc: Doc, w: Wallet, notes: Doc, now: datetime) -> None:
        """Store the due times of a wallet that time left unchanged, if they moved (a
        partial write leaves ``due_res`` a lower bound): a ``$set`` of those fields alone,
        without a new version, so no process's copy of the wallet is made stale by it (a
        copy's older due times are earlier ones: a lower bound still)."""
        due_res, due_life = core.due(w, now)
        want = {"due_res": due_res, "due_life": due_life,
                session_notes.DUE: session_notes.due(notes, self._note_grace)}
        if all(_same_time(doc.get(k), v) for k, v in want.items()):
            return
        async with translate_errors("ledger write"):
            await self._col.update_one({"_id": w.id, "v": w.version}, {"$set": want})

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
        process's copy is confirmed on a fresh read first (``_mutate``)."""
        if pushed and held + pushed > self._fx_max:
            if self._metrics is not None:
                self._metrics.effects_backlog_full.inc()
            logs.log(log, logging.WARNING, "pending effects backlog full: write refused",
                     wallet=key, pending=held, max=self._fx_max)
            raise Congestion(f"ledger: {held} effects of wallet {key} are still pending; "
                             "retry later")

    async def _read(self, supi: str, now: datetime, full: bool = False
                    ) -> tuple[Wallet, Member] | None:
        """The member's wallet as of ``now``; without ``full``, without the reservations,
        sequence records (the views do not depend on them)."""
        doc = await self._load_waiting(supi, now)
        if doc is None:
            return None
        w = core.advance(wallet_from(doc, None if full else nothing),
                         now, self._retention)
        m = w.member(supi)
        return (w, m) if m is not None else None

    async def _load_waiting(self, supi: str, now: datetime, attempt: int = 0,
                            tries: Iterator[int] | None = None) -> Doc | None:
        """``_load``, waiting out a join/leave in progress (``Busy``) with backoff: this try
        is ``attempt``, the next ones come from ``tries`` (default: the configured number
        of attempts). ``Congestion`` when they run out."""
        if tries is None:
            tries = iter(range(attempt + 1, self._attempts))
        while True:
            try:
                return await self._load(supi, now)
            except Busy:
                await self._backoff(attempt)
            nxt = next(tries, None)
            if nxt is None:
                raise Congestion(f"ledger: {supi} is being moved; retry")
            attempt = nxt

    def _view(self, w: Wallet, m: Member, now: datetime) -> SubscriberView:
        terms = core.terms_of(w, m)
        net = self._settings.network(m.home_network)
        brand = self._catalog.current.brand(m.brand)
        return SubscriberView(
            supi=m.supi, gpsi=m.gpsi, brand=m.brand, home_network=m.home_network,
            home_plmn=net.plmn_ids[0] if net else "", status=m.status, group_id=w.group_id,
            counters=core.counters(w, m, now), speed=core.speed(w, m, now),
            cap_action=terms.cap_action if terms else CapAction.BLOCK,
            roaming_allowed_without_pass=bool(terms and terms.roaming_allowed),
            block_final_unit_action=brand.block_final_unit_action if brand else "TERMINATE",
            topup_url=brand.topup_url if brand else None)

    async def _unfence(self, supi: str, v: int) -> None:
        async with translate_errors("ledger unfence"):
            await self._col.update_one({"_id": supi, "v": v},
                                       {"$unset": {"moving": "", "pending": ""},
                                        "$set": {"v": v + 1}})

    async def _repair_if_stale(self, doc: Doc, now: datetime) -> None:
        """Finish or undo a join/leave that a crash left half done."""
        mv = doc.get("moving") or {}
        at = mv.get("at")
        if at is None or now - _aware(at) < MOVE_STALE:
            return
        supi, v = doc["_id"], doc["v"]
        if doc.get("kind") == "ptr":
            g = await self._find(doc["home"])
            if g is not None and supi in g.get("supis", ()):
                await self._unfence(supi, v)
            elif doc.get("pending"):
                async with translate_errors("ledger repair"):
                    await self._col.replace_one({"_id": supi, "v": v}, doc["pending"])
            return
        g = await self._find(mv.get("to", ""))
        if g is not None and supi in g.get("supis", ()):
            async with translate_errors("ledger repair"):
                await self._col.replace_one(
                    {"_id": supi, "v": v},
                    {"_id": supi, "kind": "ptr", "home": g["_id"], "v": v + 1,
                     "brands": doc.get("brands", []), FX: list(doc.get(FX) or ())})
        else:
            await self._unfence(supi, v)


def same_changes(changes: tuple[CounterChange, ...]) -> tuple[CounterChange, ...]:
    return changes


def _aware(v: Any) -> datetime:
    return utc(v)


def _same_time(stored: Any, want: datetime | None) -> bool:
    return want is None if stored is None else want is not None and utc(stored) == want


def new_bucket_id() -> str:
    return uuid.uuid4().hex[:12]
