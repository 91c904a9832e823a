"""Subscribers, as functions over the wallet repository: creation (one or in bulk), status,
fraud speed, purchases, a family member's cap, deletion."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from pymongo.errors import BulkWriteError, DuplicateKeyError

from nf.catalog import CatalogHolder
from nf.catalog.model import BasePlan, FamilyPlan
from nf.errors import Conflict, Congestion, NotFound, Unprocessable
from nf.ledger import core, groups, marks
from nf.ledger.codec import (
    Doc,
    wallet_doc,
)
from nf.ledger.fence import repair_if_stale
from nf.ledger.port import (
    CounterChange,
    Speed,
    SubscriberStatus,
    SubscriberView,
)
from nf.ledger.reads import read, view
from nf.ledger.repo import WalletRepo, first_version, new_bucket_id
from nf.ledger.state import Member, Wallet
from nf.ledger.steps import Apply
from nf.store.mongo import translate_errors


@dataclass(frozen=True)
class NewSubscriber:
    supi: str
    brand: str
    home_network: str
    gpsi: str | None = None
    plan_offer_id: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE


def _check_new(repo: WalletRepo, catalog: CatalogHolder, s: NewSubscriber) -> BasePlan | None:
    cat = catalog.current
    if cat.brand(s.brand) is None:
        raise Unprocessable(f"unknown brand {s.brand!r}", cause="BRAND_NOT_FOUND")
    if repo.settings.network(s.home_network) is None:
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


def _new_wallet(repo: WalletRepo, catalog: CatalogHolder, s: NewSubscriber, now: datetime
                ) -> Wallet:
    plan = _check_new(repo, catalog, s)
    w = Wallet(id=s.supi, members=(Member(supi=s.supi, brand=s.brand,
                                          home_network=s.home_network, gpsi=s.gpsi,
                                          status=s.status),))
    if plan is not None:
        w, _ = core.purchase(w, s.supi, plan, now, new_bucket_id())
    w, _ = core.refresh(w, now)
    return w


async def create_subscriber(repo: WalletRepo, catalog: CatalogHolder, s: NewSubscriber,
                            now: datetime) -> SubscriberView:
    w = _new_wallet(repo, catalog, s, now)
    due_res, due_life = core.due(w, now)
    async with translate_errors("subscriber creation"):
        try:
            await repo.col.insert_one(wallet_doc(
                replace(w, version=first_version()), due_res, due_life))
        except DuplicateKeyError:
            raise Conflict(f"subscriber {s.supi} already exists",
                           cause="SUBSCRIBER_EXISTS") from None
    m = w.members[0]
    return view(repo, catalog, w, m, now)


async def bulk_create_subscribers(repo: WalletRepo, catalog: CatalogHolder,
                                  subs: Iterable[NewSubscriber], now: datetime,
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
                r = await repo.col.insert_many(chunk, ordered=False)
                n = len(r.inserted_ids)
            except BulkWriteError as e:
                errs = e.details.get("writeErrors", [])
                if any(err.get("code") != 11000 for err in errs):
                    raise
                n = int(e.details.get("nInserted", 0))
        chunk.clear()
        return n

    for s in subs:
        w = _new_wallet(repo, catalog, s, now)
        due_res, due_life = core.due(w, now)
        chunk.append(wallet_doc(replace(w, version=first_version()), due_res, due_life))
        if len(chunk) >= batch:
            created += await flush()
    created += await flush()
    return created


async def _apply(repo: WalletRepo, supi: str, now: datetime,
                 fn: Callable[[Wallet], tuple[Wallet | None, tuple[CounterChange, ...]]]
                 ) -> tuple[CounterChange, ...]:
    """``fn`` applied to the subscriber's wallet (``NotFound`` if there is none)."""
    got = await repo.mutate(supi, now, Apply(fn))
    if got is None:
        raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
    return got


async def set_status(repo: WalletRepo, supi: str, status: SubscriberStatus, now: datetime
                     ) -> tuple[CounterChange, ...]:
    return await _apply(repo, supi, now, lambda w: core.set_status(w, supi, status, now))


async def set_fraud_speed(repo: WalletRepo, supi: str, fraud_speed: Speed | None, now: datetime
                          ) -> tuple[CounterChange, ...]:
    """Throttle a subscriber for fraud, or lift it (None). Idempotent."""
    return await _apply(repo, supi, now,
                        lambda w: core.set_fraud_speed(w, supi, fraud_speed, now))


async def set_member_cap(repo: WalletRepo, supi: str, cap_bytes: int | None, now: datetime
                         ) -> tuple[CounterChange, ...]:
    """A family member's cap on the group's pool (None: no cap)."""
    def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
        if w.group_id is None:
            raise Conflict(f"{supi} is not in a family group")
        return core.set_cap(w, supi, cap_bytes, now)

    return await _apply(repo, supi, now, fn)


async def purchase(repo: WalletRepo, catalog: CatalogHolder, supi: str, offer_id: str,
                   now: datetime) -> tuple[CounterChange, ...]:
    """Buy an offer of the subscriber's brand. A family plan creates a group with the
    buyer as its first member."""
    found = catalog.current.offer(offer_id)
    got = await read(repo, supi, now)
    if got is None:
        raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
    brand = got[1].brand
    if found is None or found[0] != brand:
        raise Unprocessable(f"brand {brand} sells no offer {offer_id!r}",
                            cause="OFFER_NOT_FOUND")
    offer = found[1]
    if isinstance(offer, FamilyPlan):
        gid = await groups.create_group(repo, catalog, supi, offer_id, now, bought=True)
        return await groups.join_group(repo, catalog, supi, gid, now)
    bid = new_bucket_id()

    def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
        new, changes = core.purchase(w, supi, offer, now, bid)
        return new, marks.with_purchase(new, supi, offer, bid, now, changes)

    return await _apply(repo, supi, now, fn)


async def delete_subscriber(repo: WalletRepo, supi: str, now: datetime) -> bool:
    repo.copies.forget(supi)
    doc = await repo.find(supi)
    if doc is None:
        return False
    if doc.get("kind") == "ptr":
        await groups.leave_group(repo, supi, now)
    for attempt in range(repo.attempts):
        doc = await repo.find(supi)
        if doc is None:
            return False
        if doc.get("moving") or doc.get("kind") == "ptr":
            await repair_if_stale(repo.col, doc, now)
            await repo.backoff(attempt)
            continue
        async with translate_errors("subscriber deletion"):
            r = await repo.col.delete_one({"_id": supi, "v": doc["v"]})
        if r.deleted_count == 1:
            return True
        await repo.backoff(attempt)
    raise Congestion(f"ledger: {supi} is busy; retry")
