"""``MongoLedger``: the ``Ledger`` port on MongoDB, one document per wallet.

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
import random
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import bson
from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from nf.catalog import CatalogHolder
from nf.catalog.model import BasePlan, FamilyPlan
from nf.clock import utc
from nf.config import Settings
from nf.errors import Conflict, Congestion, Forbidden, NotFound, Unprocessable
from nf.ledger import core
from nf.ledger.codec import (
    Doc,
    Pick,
    outcome_from,
    session_prefix,
    sub_key,
    update_doc,
    wallet_doc,
    wallet_from,
)
from nf.ledger.port import (
    BalanceView,
    BucketView,
    CapAction,
    ChargeOutcome,
    ChargeStep,
    CounterChange,
    Speed,
    SubscriberStatus,
    SubscriberView,
)
from nf.ledger.state import Member, Wallet
from nf.sbi.metrics import Metrics
from nf.store.mongo import Db, translate_errors

R = TypeVar("R")
COLLECTION = "ledger_wallets"
MOVE_STALE = timedelta(seconds=10)
HOMES_MAX = 200_000  # member -> group mappings remembered per process
DOC_CACHE = 10_000  # wallet documents remembered per process (LRU)


def _nothing(_k: str) -> bool:
    return False


def _first_version() -> int:
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


class _Busy(Exception):
    """The document is fenced by a join/leave in progress: wait and read again."""


@dataclass(frozen=True)
class NewSubscriber:
    supi: str
    brand: str
    home_network: str
    gpsi: str | None = None
    plan_offer_id: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE


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


class MongoLedger:
    """The balance manager on MongoDB. Implements ``nf.ledger.port.Ledger``."""

    def __init__(self, db: Db, settings: Settings, catalog: CatalogHolder, *,
                 metrics: Metrics | None = None, local_locks: bool = True,
                 doc_cache: int = DOC_CACHE) -> None:
        self._col = db[COLLECTION]
        self._opts = self._col.codec_options
        self._docs: OrderedDict[str, Doc] = OrderedDict()
        self._docs_max = doc_cache
        self._settings = settings
        self._catalog = catalog
        self._metrics = metrics
        self._ring = settings.ledger.op_ring_size
        self._retention = timedelta(seconds=settings.ledger.op_retention_s)
        self._attempts = settings.ledger.max_write_attempts
        self._locks: _KeyLocks | _NoLocks = _KeyLocks() if local_locks else _NoLocks()
        self._rng = random.Random()
        self._homes: dict[str, str] = {}  # family member -> group wallet id (a hint)
        self._plmns: dict[str, frozenset[str]] = {
            n.id: frozenset(n.plmn_ids) for n in settings.networks}

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
            raise _Busy
        if doc.get("kind") == "ptr":
            g = await self._find(doc["home"])
            if g is None or supi not in g.get("supis", ()):
                raise _Busy  # mid-move; the fence is being lifted
            if len(self._homes) >= HOMES_MAX:
                self._homes.clear()
            self._homes[supi] = g["_id"]
            self._remember(g)
            return g
        self._remember(doc)
        return doc

    async def _update(self, doc: Doc, old: Wallet, new: Wallet, now: datetime,
                      partial: bool) -> bool:
        """Write what changed from ``old`` (read as ``doc``) to ``new``, if nobody wrote the
        wallet since."""
        due_res, due_life = core.due(new, now)
        if partial and doc.get("due_res") is not None:
            # Reservations left out of a partial wallet expire no earlier than before.
            old_due = utc(doc["due_res"])
            due_res = old_due if due_res is None else min(due_res, old_due)
        upd = update_doc(old, new, due_res, due_life)
        self._forget(old.id)
        async with translate_errors("ledger write"):
            r = await self._col.update_one({"_id": old.id, "v": old.version}, upd)
        if r.matched_count != 1:
            return False
        # Keep the copy in step with what was stored (as the server encodes it).
        stored = bson.decode(bson.encode(upd, codec_options=self._opts),
                             codec_options=self._opts)
        for path, value in stored["$set"].items():
            _put(doc, path, value)
        for path in stored.get("$unset", {}):
            _put(doc, path, None, unset=True)
        self._remember(doc)
        return True

    async def _replace(self, w: Wallet, expected_v: int, now: datetime) -> bool:
        due_res, due_life = core.due(w, now)
        doc = wallet_doc(replace(w, version=expected_v + 1), due_res, due_life)
        self._forget(w.id)
        async with translate_errors("ledger write"):
            r = await self._col.replace_one({"_id": w.id, "v": expected_v}, doc)
        return r.matched_count == 1

    async def _backoff(self, attempt: int) -> None:
        if self._metrics is not None:
            self._metrics.ledger_conflicts.inc()
        await asyncio.sleep(self._rng.uniform(0, min(0.02, 0.0002 * 2 ** min(attempt, 7))))

    async def _mutate(self, supi: str, now: datetime,
                      fn: Callable[[Wallet], tuple[Wallet | None, R]], *,
                      pick: Pick | None = None, with_ops: bool = True,
                      peek: Callable[[Doc], R | None] | None = None) -> R | None:
        """Apply ``fn`` to the subscriber's wallet atomically; None if unknown.

        ``pick``: the only reservations/sequence records ``fn`` may touch, when nothing is
        due (a partial wallet; ``with_ops=False`` also leaves out the op-key rings).
        ``peek``: answers from the raw document without decoding it (a replay)."""
        # Family members known to share a wallet queue on it, not on their SUPI.
        async with self._locks.hold(self._homes.get(supi, supi)):
            fresh = False
            for attempt in range(self._attempts):
                doc = None if fresh else self._cached(supi)
                if doc is None:
                    fresh = True
                    try:
                        doc = await self._load(supi, now)
                    except _Busy:
                        await self._backoff(attempt)
                        continue
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
                w = wallet_from(doc, pick if partial else None,
                                with_ops=with_ops or not partial)
                new, result = fn(w)
                if new is None:
                    if fresh:
                        return result
                    fresh = True  # writes nothing: confirm on a fresh read
                    continue
                if await self._update(doc, w, new, now, partial):
                    return result
                if not fresh:
                    fresh = True  # the copy was stale: no backoff, just read
                    continue
                await self._backoff(attempt)
        raise Congestion(f"ledger: too many concurrent writes for {supi}; retry")

    async def _mutate_doc(self, key: str, now: datetime,
                          fn: Callable[[Wallet], tuple[Wallet | None, R]],
                          skip_busy: bool = False) -> R | None:
        """Like ``_mutate`` for a wallet addressed by its own id (groups, sweepers)."""
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
            if new is None or await self._replace(new, w.version, now):
                return result
            await self._backoff(attempt)
        raise Congestion(f"ledger: too many concurrent writes for {key}; retry")

    # --------------------------------------------------------------------- the port

    async def charge(self, step: ChargeStep) -> ChargeOutcome:
        m_net = self._plmns
        key = sub_key(step.supi, step.session_id, step.rating_group)

        def fn(w: Wallet) -> tuple[Wallet | None, ChargeOutcome]:
            m = w.member(step.supi)
            if m is None:
                return None, core.unknown_outcome()
            new, out = core.charge(w, step, m_net.get(m.home_network, frozenset()),
                                   self._ring, self._retention)
            return (None if out.replay else new), out

        def peek(doc: Doc) -> ChargeOutcome | None:
            # A retried op key, found by comparing raw keys before decoding anything.
            for md in doc.get("members", ()):
                if md.get("supi") == step.supi:
                    for op in md.get("ops", ()):
                        if op[0] == step.op_key:
                            return replace(outcome_from(op[1]), replay=True)
            return None

        out = await self._mutate(step.supi, step.now, fn, pick=key.__eq__,
                                 with_ops=step.sequence is None,
                                 peek=peek if step.sequence is None else None)
        return out if out is not None else core.unknown_outcome()

    async def close_session(self, supi: str, session_id: str, now: datetime
                            ) -> tuple[CounterChange, ...]:
        prefix = session_prefix(supi, session_id)

        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            if not core.session_open(w, supi, session_id):
                return None, ()
            return core.close_session(w, supi, session_id, now, self._retention)

        return await self._mutate(supi, now, fn, pick=lambda k: k.startswith(prefix),
                                  with_ops=False) or ()

    async def _read(self, supi: str, now: datetime, full: bool = False
                    ) -> tuple[Wallet, Member] | None:
        """The member's wallet as of ``now``; without ``full``, without the reservations,
        sequence records and op rings (the views do not depend on them)."""
        for attempt in range(self._attempts):
            try:
                doc = await self._load(supi, now)
            except _Busy:
                await self._backoff(attempt)
                continue
            if doc is None:
                return None
            w = core.advance(wallet_from(doc, None if full else _nothing, with_ops=full),
                             now, self._retention)
            m = w.member(supi)
            return (w, m) if m is not None else None
        raise Congestion(f"ledger: {supi} is being moved; retry")

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

    # ----------------------------------------------------------- provisioning helpers

    def _check_new(self, s: NewSubscriber) -> BasePlan | None:
        cat = self._catalog.current
        if cat.brand(s.brand) is None:
            raise Unprocessable(f"unknown brand {s.brand!r}", cause="BRAND_NOT_FOUND")
        if self._settings.network(s.home_network) is None:
            raise Unprocessable(f"unknown host network {s.home_network!r}",
                                cause="NETWORK_NOT_FOUND")
        if s.plan_offer_id is None:
            return None
        found = cat.offer(s.plan_offer_id)
        if found is None or found[0] != s.brand:
            raise Unprocessable(f"brand {s.brand} sells no offer {s.plan_offer_id!r}",
                                cause="OFFER_NOT_FOUND")
        if not isinstance(found[1], BasePlan):
            raise Unprocessable(f"offer {s.plan_offer_id!r} is not a base plan",
                                cause="OFFER_NOT_APPLICABLE")
        return found[1]

    def _new_wallet(self, s: NewSubscriber, now: datetime) -> Wallet:
        plan = self._check_new(s)
        w = Wallet(id=s.supi, members=(Member(supi=s.supi, brand=s.brand,
                                              home_network=s.home_network, gpsi=s.gpsi,
                                              status=s.status),))
        if plan is not None:
            w, _ = core.purchase(w, s.supi, plan, now, _bucket_id())
        w, _ = core.refresh(w, now)
        return w

    async def create_subscriber(self, s: NewSubscriber, now: datetime) -> SubscriberView:
        w = self._new_wallet(s, now)
        due_res, due_life = core.due(w, now)
        async with translate_errors("subscriber creation"):
            try:
                await self._col.insert_one(wallet_doc(
                    replace(w, version=_first_version()), due_res, due_life))
            except DuplicateKeyError:
                raise Conflict(f"subscriber {s.supi} already exists",
                               cause="SUBSCRIBER_EXISTS") from None
        m = w.members[0]
        return self._view(w, m, now)

    async def bulk_create_subscribers(self, subs: Iterable[NewSubscriber], now: datetime,
                                      batch: int = 1000) -> int:
        """Insert many subscribers fast (existing SUPIs are skipped); returns how many were
        created."""
        created = 0
        chunk: list[Doc] = []

        async def flush() -> int:
            if not chunk:
                return 0
            async with translate_errors("bulk subscriber creation"):
                try:
                    r = await self._col.insert_many(chunk, ordered=False)
                    n = len(r.inserted_ids)
                except BulkWriteError as e:
                    errs = e.details.get("writeErrors", [])
                    if any(err.get("code") != 11000 for err in errs):
                        raise
                    n = int(e.details.get("nInserted", 0))
            chunk.clear()
            return n

        for s in subs:
            w = self._new_wallet(s, now)
            due_res, due_life = core.due(w, now)
            chunk.append(wallet_doc(replace(w, version=_first_version()), due_res, due_life))
            if len(chunk) >= batch:
                created += await flush()
        created += await flush()
        return created

    async def set_status(self, supi: str, status: SubscriberStatus, now: datetime
                         ) -> tuple[CounterChange, ...]:
        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            return core.set_status(w, supi, status, now)

        got = await self._mutate(supi, now, fn)
        if got is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        return got

    async def set_fraud_speed(self, supi: str, fraud_speed: Speed | None, now: datetime
                              ) -> tuple[CounterChange, ...]:
        """Throttle a subscriber for fraud, or lift it (None). Idempotent."""
        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            return core.set_fraud_speed(w, supi, fraud_speed, now)

        got = await self._mutate(supi, now, fn)
        if got is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        return got

    async def purchase(self, supi: str, offer_id: str, now: datetime
                       ) -> tuple[CounterChange, ...]:
        """Buy an offer of the subscriber's brand. A family plan creates a group with the
        buyer as its first member."""
        found = self._catalog.current.offer(offer_id)
        got = await self._read(supi, now)
        if got is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        brand = got[1].brand
        if found is None or found[0] != brand:
            raise Unprocessable(f"brand {brand} sells no offer {offer_id!r}",
                                cause="OFFER_NOT_FOUND")
        offer = found[1]
        if isinstance(offer, FamilyPlan):
            gid = await self.create_group(supi, offer_id, now)
            return await self.join_group(supi, gid, now)
        bid = _bucket_id()

        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            return core.purchase(w, supi, offer, now, bid)

        res = await self._mutate(supi, now, fn)
        if res is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        return res

    async def delete_subscriber(self, supi: str, now: datetime) -> bool:
        self._forget(supi)
        doc = await self._find(supi)
        if doc is None:
            return False
        if doc.get("kind") == "ptr":
            await self.leave_group(supi, now)
        for attempt in range(self._attempts):
            doc = await self._find(supi)
            if doc is None:
                return False
            if doc.get("moving") or doc.get("kind") == "ptr":
                await self._repair_if_stale(doc, now)
                await self._backoff(attempt)
                continue
            async with translate_errors("subscriber deletion"):
                r = await self._col.delete_one({"_id": supi, "v": doc["v"]})
            if r.deleted_count == 1:
                return True
            await self._backoff(attempt)
        raise Congestion(f"ledger: {supi} is busy; retry")

    # -------------------------------------------------------------------- family groups

    async def create_group(self, owner: str, offer_id: str, now: datetime,
                           group_id: str | None = None) -> str:
        """Create a family group (the pool) bought by ``owner``; returns the group id.
        The owner is not joined: call ``join_group`` (``purchase`` does both)."""
        got = await self._read(owner, now)
        if got is None:
            raise NotFound(f"no subscriber {owner}", cause="USER_NOT_FOUND")
        found = self._catalog.current.offer(offer_id)
        if found is None or found[0] != got[1].brand:
            raise Unprocessable(f"brand {got[1].brand} sells no offer {offer_id!r}",
                                cause="OFFER_NOT_FOUND")
        if not isinstance(found[1], FamilyPlan):
            raise Unprocessable(f"offer {offer_id!r} is not a family plan",
                                cause="OFFER_NOT_APPLICABLE")
        gid = group_id or uuid.uuid4().hex[:12]
        g = core.new_group(gid, found[1], owner, now)
        due_res, due_life = core.due(g, now)
        async with translate_errors("group creation"):
            try:
                await self._col.insert_one(wallet_doc(
                    replace(g, version=_first_version()), due_res, due_life))
            except DuplicateKeyError:
                raise Conflict(f"group {gid} already exists") from None
        return gid

    async def group(self, group_id: str, now: datetime) -> Wallet | None:
        doc = await self._find(f"grp:{group_id}")
        return None if doc is None else core.advance(wallet_from(doc), now, self._retention)

    async def _fence(self, supi: str, kind: str, to: str, now: datetime) -> Doc:
        self._forget(supi)
        for attempt in range(self._attempts):
            doc = await self._find(supi)
            if doc is None:
                raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
            if doc.get("moving"):
                await self._repair_if_stale(doc, now)
                await self._backoff(attempt)
                continue
            if doc.get("kind") != kind:
                raise Conflict(f"{supi} is already in a family group" if kind == "solo"
                               else f"{supi} is not in a family group")
            async with translate_errors("ledger fence"):
                r = await self._col.update_one(
                    {"_id": supi, "v": doc["v"]},
                    {"$set": {"moving": {"to": to, "at": now}, "v": doc["v"] + 1}})
            if r.modified_count == 1:
                doc["v"] += 1
                return doc
            await self._backoff(attempt)
        raise Congestion(f"ledger: {supi} is busy; retry")

    async def _unfence(self, supi: str, v: int) -> None:
        async with translate_errors("ledger unfence"):
            await self._col.update_one({"_id": supi, "v": v},
                                       {"$unset": {"moving": "", "pending": ""},
                                        "$set": {"v": v + 1}})

    async def join_group(self, supi: str, group_id: str, now: datetime,
                         cap_bytes: int | None = None) -> tuple[CounterChange, ...]:
        gkey = f"grp:{group_id}"
        g = await self._find(gkey)
        if g is None:
            raise NotFound(f"no family group {group_id}", cause="GROUP_NOT_FOUND")
        # A group's family offer never changes: this read also serves the brand check.
        fam = wallet_from(g).family
        doc = await self._fence(supi, "solo", gkey, now)
        solo = wallet_from(doc)
        try:
            owner = self._catalog.current.offer(fam.offer_id) if fam else None
            if owner is not None and owner[0] != solo.members[0].brand:
                raise Forbidden(f"group {group_id} belongs to another brand")

            def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
                if w.member(supi) is not None:
                    return None, ()
                return core.attach(w, solo, supi, cap_bytes, now)

            changes = await self._mutate_doc(gkey, now, fn)
            if changes is None:
                raise NotFound(f"no family group {group_id}", cause="GROUP_NOT_FOUND")
        except BaseException:
            await self._unfence(supi, doc["v"])
            raise
        async with translate_errors("ledger join"):
            await self._col.replace_one(
                {"_id": supi, "v": doc["v"]},
                {"_id": supi, "kind": "ptr", "home": gkey, "v": doc["v"] + 1,
                 "brands": [solo.members[0].brand]})
        return changes

    async def leave_group(self, supi: str, now: datetime) -> tuple[CounterChange, ...]:
        doc = await self._fence(supi, "ptr", "solo", now)
        gkey = doc["home"]
        v = doc["v"]
        changes: tuple[CounterChange, ...] = ()
        try:
            for attempt in range(self._attempts):
                g = await self._find(gkey)
                if g is None or supi not in g.get("supis", ()):
                    raise Conflict(f"{supi} is not in group {gkey}")
                grp, solo, changes = core.detach(wallet_from(g), supi, now)
                due_res, due_life = core.due(solo, now)
                pending = wallet_doc(replace(solo, version=v + 2), due_res, due_life)
                async with translate_errors("ledger leave"):
                    r = await self._col.update_one({"_id": supi, "v": v},
                                                   {"$set": {"pending": pending, "v": v + 1}})
                if r.modified_count != 1:
                    raise Conflict(f"{supi} changed during leave; retry")
                v += 1
                if await self._replace(grp, grp.version, now):
                    break
                await self._backoff(attempt)
            else:
                raise Congestion(f"ledger: group {gkey} is busy; retry")
        except BaseException:
            await self._unfence(supi, v)
            raise
        async with translate_errors("ledger leave"):
            await self._col.replace_one({"_id": supi, "v": v}, pending)
        return changes

    async def set_member_cap(self, supi: str, cap_bytes: int | None, now: datetime
                             ) -> tuple[CounterChange, ...]:
        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            if w.group_id is None:
                raise Conflict(f"{supi} is not in a family group")
            return core.set_cap(w, supi, cap_bytes, now)

        got = await self._mutate(supi, now, fn)
        if got is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        return got

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
                     "brands": doc.get("brands", [])})
        else:
            await self._unfence(supi, v)

    # ---------------------------------------------------------------------- sweepers

    async def sweep_due(self, which: str, now: datetime, limit: int
                        ) -> tuple[CounterChange, ...]:
        """Apply time to wallets whose ``due_res`` or ``due_life`` has passed."""
        field = "due_res" if which == "res" else "due_life"
        async with translate_errors("ledger sweep"):
            keys = [d["_id"] async for d in self._col.find(
                {field: {"$lte": now}}, {"_id": 1}).limit(limit)]
        out: list[CounterChange] = []
        for key in keys:
            def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
                return core.sweep(w, now, self._retention)

            try:
                got = await self._mutate_doc(key, now, fn, skip_busy=True)
            except Congestion:
                continue  # busy wallets are swept by their own traffic; next round
            out.extend(got or ())
        return tuple(out)


def _aware(v: Any) -> datetime:
    return utc(v)


def _bucket_id() -> str:
    return uuid.uuid4().hex[:12]
