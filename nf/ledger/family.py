"""Family groups as pure functions: a new group's wallet, members attached and detached
(with their buckets and reservations), per-member caps."""


from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from nf.catalog.model import FamilyPlan
from nf.errors import Conflict, Unprocessable
from nf.ledger.lifetime import advance
from nf.ledger.offers import plan_terms
from nf.ledger.port import (
    CounterChange,
)
from nf.ledger.state import (
    POOL,
    Bucket,
    Wallet,
)
from nf.ledger.views import refresh
from nf.ledger.work import Work


def new_group(group_id: str, offer: FamilyPlan, owner: str, now: datetime) -> Wallet:
    """An empty family wallet holding a fresh pool; members are attached afterwards."""
    t = plan_terms(offer)
    pool = Bucket(id=POOL, kind="pool", offer_id=offer.id, offer_version=offer.version,
                  quota=t.allowance, valid_from=now, valid_to=None, owner=None)
    return Wallet(id=f"grp:{group_id}", members=(), buckets=(pool,), group_id=group_id,
                  family=t, family_period_start=now,
                  family_period_end=now + timedelta(days=t.period_days), owner=owner)


def attach(group: Wallet, solo: Wallet, supi: str, cap: int | None, now: datetime
           ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """The group wallet with the member (and their buckets and reservations) moved in."""
    if group.family is None:
        raise Unprocessable(f"{group.id} is not a family group")
    if group.member(supi) is not None:
        raise Conflict(f"{supi} is already a member of group {group.group_id}")
    if len(group.members) >= group.family.max_members:
        raise Conflict(f"group {group.group_id} is full ({group.family.max_members} members)")
    m = solo.member(supi)
    if m is None:
        raise Unprocessable(f"{supi} is not in wallet {solo.id}")
    g = advance(group, now)
    moved = replace(m, cap=cap if cap is not None else g.family.member_cap if g.family
                    else None, pool_used=0, pool_reserved=0)
    new = replace(g, members=(*g.members, moved),
                  buckets=g.buckets + tuple(b for b in solo.buckets if b.owner == supi),
                  reservations=g.reservations + tuple(
                      r for r in solo.reservations if r.supi == supi),
                  seqs=g.seqs + tuple(q for q in solo.seqs if q.supi == supi))
    return refresh(new, now)


def detach(group: Wallet, supi: str, now: datetime
           ) -> tuple[Wallet, Wallet, tuple[CounterChange, ...]]:
    """(group without the member, the member's own wallet, counter changes). The member's
    holds on the pool are released; their own buckets go with them."""
    work = Work(advance(group, now))
    m = work.members.get(supi)
    if m is None:
        raise Conflict(f"{supi} is not a member of group {group.group_id}")
    for r in [r for r in work.res if r.supi == supi]:
        pool_part = [p for p in r.portions if p.bucket_id == POOL]
        for p in pool_part:
            work.unreserve(supi, p)
        work.res.remove(r)
        rest = tuple(p for p in r.portions if p.bucket_id != POOL)
        if rest:
            work.res.append(replace(r, portions=rest))
    m = replace(work.members.pop(supi), cap=None, pool_used=0, pool_reserved=0)
    mine = tuple(b for b in work.buckets.values() if b.owner == supi)
    for b in mine:
        del work.buckets[b.id]
    theirs = tuple(r for r in work.res if r.supi == supi)
    work.res = [r for r in work.res if r.supi != supi]
    seqs = tuple(q for q in work.seqs if q.supi == supi)
    work.seqs = [q for q in work.seqs if q.supi != supi]
    g = work.freeze()
    solo = Wallet(id=supi, members=(m,), buckets=mine, reservations=theirs, seqs=seqs)
    g, c1 = refresh(g, now)
    solo, c2 = refresh(solo, now)
    return g, solo, c1 + c2


def set_cap(group: Wallet, supi: str, cap: int | None, now: datetime
            ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    work = Work(advance(group, now))
    m = work.members.get(supi)
    if m is None:
        raise Conflict(f"{supi} is not a member of group {group.group_id}")
    work.members[supi] = replace(m, cap=cap)
    new = work.freeze()
    return refresh(new, now)
