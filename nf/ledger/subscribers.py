"""Subscribers on the wallet repository: creation (one or in bulk), status, purchases,
deletion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from pymongo.errors import BulkWriteError, DuplicateKeyError

from nf.catalog.model import BasePlan, FamilyPlan
from nf.errors import Conflict, Congestion, NotFound, Unprocessable
from nf.ledger import core, marks
from nf.ledger.codec import (
    Doc,
    wallet_doc,
)
from nf.ledger.groups import GroupOps
from nf.ledger.port import (
    CounterChange,
    Speed,
    SubscriberStatus,
    SubscriberView,
)
from nf.ledger.repo import first_version, new_bucket_id, same_changes
from nf.ledger.state import Member, Wallet
from nf.store.mongo import translate_errors


@dataclass(frozen=True)
class NewSubscriber:
    supi: str
    brand: str
    home_network: str
    gpsi: str | None = None
    plan_offer_id: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE


class SubscriberOps(GroupOps):
    """Provisioning operations of ``MongoLedger``."""

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
            w, _ = core.purchase(w, s.supi, plan, now, new_bucket_id())
        w, _ = core.refresh(w, now)
        return w

    async def create_subscriber(self, s: NewSubscriber, now: datetime) -> SubscriberView:
        w = self._new_wallet(s, now)
        due_res, due_life = core.due(w, now)
        async with translate_errors("subscriber creation"):
            try:
                await self._col.insert_one(wallet_doc(
                    replace(w, version=first_version()), due_res, due_life))
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
            chunk.append(wallet_doc(replace(w, version=first_version()), due_res, due_life))
            if len(chunk) >= batch:
                created += await flush()
        created += await flush()
        return created

    async def set_status(self, supi: str, status: SubscriberStatus, now: datetime
                         ) -> tuple[CounterChange, ...]:
        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            return core.set_status(w, supi, status, now)

        got = await self._mutate(supi, now, fn, same_changes)
        if got is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        return got

    async def set_fraud_speed(self, supi: str, fraud_speed: Speed | None, now: datetime
                              ) -> tuple[CounterChange, ...]:
        """Throttle a subscriber for fraud, or lift it (None). Idempotent."""
        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            return core.set_fraud_speed(w, supi, fraud_speed, now)

        got = await self._mutate(supi, now, fn, same_changes)
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
            gid = await self.create_group(supi, offer_id, now, bought=True)
            return await self.join_group(supi, gid, now)
        bid = new_bucket_id()

        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            new, changes = core.purchase(w, supi, offer, now, bid)
            return new, marks.with_purchase(new, supi, offer, bid, now, changes)

        res = await self._mutate(supi, now, fn, same_changes)
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
