"""Family groups, as functions over the wallet repository: the group's wallet, and members
joining and leaving (moved between two documents behind a fence, ``nf.ledger.fence``)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from nf.catalog import CatalogHolder
from nf.catalog.model import FamilyPlan
from nf.effects import FIELD as FX
from nf.errors import Conflict, Congestion, Forbidden, NotFound, Unprocessable
from nf.ledger import core, marks
from nf.ledger import notes as session_notes
from nf.ledger.codec import (
    Doc,
    wallet_doc,
    wallet_from,
)
from nf.ledger.fence import repair_if_stale, unfence
from nf.ledger.port import CounterChange
from nf.ledger.reads import read
from nf.ledger.repo import NOTES, WalletRepo, first_version
from nf.ledger.state import Wallet
from nf.store.mongo import translate_errors


async def create_group(repo: WalletRepo, catalog: CatalogHolder, owner: str, offer_id: str,
                       now: datetime, group_id: str | None = None, *, bought: bool = False
                       ) -> str:
    """Create a family group (the pool) bought by ``owner``; returns the group id.
    The owner is not joined: call ``join_group`` (``purchase`` does both).

    ``bought``: the owner buys the plan now (``purchase``); the group's insert carries
    the purchase as a pending counter change of the owner (counters unchanged), which
    becomes the purchase EDR (``nf.edr.purchases``) even if this process dies next."""
    got = await read(repo, owner, now)
    if got is None:
        raise NotFound(f"no subscriber {owner}", cause="USER_NOT_FOUND")
    found = catalog.current.offer(offer_id)
    if found is None or found[0] != got[1].brand:
        raise Unprocessable(f"brand {got[1].brand} sells no offer {offer_id!r}",
                            cause="OFFER_NOT_FOUND")
    if not isinstance(found[1], FamilyPlan):
        raise Unprocessable(f"offer {offer_id!r} is not a family plan",
                            cause="OFFER_NOT_APPLICABLE")
    gid = group_id or uuid.uuid4().hex[:12]
    g = core.new_group(gid, found[1], owner, now)
    due_res, due_life = core.due(g, now)
    doc = wallet_doc(replace(g, version=first_version()), due_res, due_life)
    # No bucket of the owner's: the EDR's id is made from the offer and the time.
    fx = repo.fx(marks.with_purchase(got[0], owner, found[1], "", now, ()), now) \
        if bought else []
    if fx:
        doc[FX] = fx
    async with translate_errors("group creation"):
        try:
            await repo.col.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"group {gid} already exists") from None
    repo.hand_off(g.id, fx)
    return gid


async def group(repo: WalletRepo, group_id: str, now: datetime) -> Wallet | None:
    doc = await repo.find(f"grp:{group_id}")
    return None if doc is None else core.advance(wallet_from(doc), now, repo.retention)


async def _fence(repo: WalletRepo, supi: str, kind: str, to: str, now: datetime) -> Doc:
    repo.copies.forget(supi)
    for attempt in range(repo.attempts):
        doc = await repo.find(supi)
        if doc is None:
            raise NotFound(f"no subscriber {supi}", cause="USER_NOT_FOUND")
        if doc.get("moving"):
            await repair_if_stale(repo.col, doc, now)
            await repo.backoff(attempt)
            continue
        if doc.get("kind") != kind:
            raise Conflict(f"{supi} is already in a family group" if kind == "solo"
                           else f"{supi} is not in a family group")
        async with translate_errors("ledger fence"):
            r = await repo.col.update_one(
                {"_id": supi, "v": doc["v"]},
                {"$set": {"moving": {"to": to, "at": now}, "v": doc["v"] + 1}})
        if r.modified_count == 1:
            doc["v"] += 1
            return doc
        await repo.backoff(attempt)
    raise Congestion(f"ledger: {supi} is busy; retry")


async def join_group(repo: WalletRepo, catalog: CatalogHolder, supi: str, group_id: str,
                     now: datetime, cap_bytes: int | None = None
                     ) -> tuple[CounterChange, ...]:
    gkey = f"grp:{group_id}"
    g = await repo.find(gkey)
    if g is None:
        raise NotFound(f"no family group {group_id}", cause="GROUP_NOT_FOUND")
    # A group's family offer never changes: this read also serves the brand check.
    fam = wallet_from(g).family
    doc = await _fence(repo, supi, "solo", gkey, now)
    solo = wallet_from(doc)
    try:
        owner = catalog.current.offer(fam.offer_id) if fam else None
        if owner is not None and owner[0] != solo.members[0].brand:
            raise Forbidden(f"group {group_id} belongs to another brand")

        def fn(w: Wallet) -> tuple[Wallet | None, tuple[CounterChange, ...]]:
            if w.member(supi) is not None:
                return None, ()
            return core.attach(w, solo, supi, cap_bytes, now)

        # The member's session notes move with its reservations.
        changes = await repo.mutate_doc(gkey, now, fn, add_notes=doc.get(NOTES))
        if changes is None:
            raise NotFound(f"no family group {group_id}", cause="GROUP_NOT_FOUND")
    except BaseException:
        await unfence(repo.col, supi, doc["v"])
        raise
    ptr: Doc = {"_id": supi, "kind": "ptr", "home": gkey, "v": doc["v"] + 1,
                "brands": [solo.members[0].brand]}
    if doc.get(FX):
        ptr[FX] = repo.carried(doc)
    async with translate_errors("ledger join"):
        await repo.col.replace_one({"_id": supi, "v": doc["v"]}, ptr)
    return changes


async def leave_group(repo: WalletRepo, supi: str, now: datetime) -> tuple[CounterChange, ...]:
    doc = await _fence(repo, supi, "ptr", "solo", now)
    gkey = doc["home"]
    v = doc["v"]
    changes: tuple[CounterChange, ...] = ()
    try:
        for attempt in range(repo.attempts):
            g = await repo.find(gkey)
            if g is None or supi not in g.get("supis", ()):
                raise Conflict(f"{supi} is not in group {gkey}")
            grp, solo, changes = core.detach(wallet_from(g), supi, now)
            due_res, due_life = core.due(solo, now)
            pending = wallet_doc(replace(solo, version=v + 2), due_res, due_life)
            if doc.get(FX):
                pending[FX] = repo.carried(doc)
            # The member's session notes leave with its reservations.
            notes = g.get(NOTES) or {}
            mine = {k: n for k, n in notes.items() if n.get("s") == supi}
            if mine:
                pending[NOTES] = mine
                pending[session_notes.DUE] = session_notes.due(mine, repo.note_grace)
            async with translate_errors("ledger leave"):
                r = await repo.col.update_one({"_id": supi, "v": v},
                                              {"$set": {"pending": pending, "v": v + 1}})
            if r.modified_count != 1:
                raise Conflict(f"{supi} changed during leave; retry")
            v += 1
            if await repo.replace(grp, grp.version, now, repo.carried(g), repo.fx(changes, now),
                                  {k: n for k, n in notes.items() if k not in mine}):
                break
            await repo.backoff(attempt)
        else:
            raise Congestion(f"ledger: group {gkey} is busy; retry")
    except BaseException:
        await unfence(repo.col, supi, v)
        raise
    async with translate_errors("ledger leave"):
        await repo.col.replace_one({"_id": supi, "v": v}, pending)
    return changes
