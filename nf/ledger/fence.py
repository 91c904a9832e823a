"""The fence of a family move (``moving``): lifting it, and finishing or undoing a move that
a crash left half done.

Joining or leaving a group moves a member between their own document and the group's
behind a fence on the member's document, which makes other writers wait (``Busy``). A
fence older than ``MOVE_STALE`` belongs to a process that died: whoever finds it finishes
the move if the group already holds the member, and undoes it otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nf.clock import utc
from nf.effects import FIELD as FX
from nf.ledger.codec import Doc
from nf.store.mongo import Collection, translate_errors

MOVE_STALE = timedelta(seconds=10)


class Busy(Exception):
    """The document is fenced by a join/leave in progress: wait and read again."""


async def unfence(col: Collection, supi: str, v: int) -> None:
    async with translate_errors("ledger unfence"):
        await col.update_one({"_id": supi, "v": v},
                             {"$unset": {"moving": "", "pending": ""}, "$set": {"v": v + 1}})


async def repair_if_stale(col: Collection, doc: Doc, now: datetime) -> None:
    """Finish or undo a join/leave that a crash left half done."""
    mv = doc.get("moving") or {}
    at = mv.get("at")
    if at is None or now - utc(at) < MOVE_STALE:
        return
    supi, v = doc["_id"], doc["v"]
    if doc.get("kind") == "ptr":
        g = await _find(col, doc["home"])
        if g is not None and supi in g.get("supis", ()):
            await unfence(col, supi, v)
        elif doc.get("pending"):
            async with translate_errors("ledger repair"):
                await col.replace_one({"_id": supi, "v": v}, doc["pending"])
        return
    g = await _find(col, mv.get("to", ""))
    if g is not None and supi in g.get("supis", ()):
        async with translate_errors("ledger repair"):
            await col.replace_one(
                {"_id": supi, "v": v},
                {"_id": supi, "kind": "ptr", "home": g["_id"], "v": v + 1,
                 "brands": doc.get("brands", []), FX: list(doc.get(FX) or ())})
    else:
        await unfence(col, supi, v)


async def _find(col: Collection, key: str) -> Doc | None:
    async with translate_errors("ledger read"):
        return await col.find_one({"_id": key})
