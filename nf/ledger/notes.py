"""The CHF's notes of its charging sessions on a wallet (``cs.<ChargingDataRef>``), and
when one may be dropped. Pure functions over the raw notes; no I/O.

A note is written by the same update as its session's step (``MongoLedger.charge_noted``)
and dropped by the update that closes the session. A crash between the note's write and
the session's insert, or between a session's close and the ledger's close, leaves a note
that nobody drops. Each note carries its session's supervision deadline (``e``), which every
step of the session moves on; a session not heard of past its deadline is closed by the
CHF's supervision. So a note whose deadline lies more than ``grace`` behind belongs to no
live session: the wallet's next write of a note and the reservation sweeper drop it. The
wallet keeps the earliest moment one of its notes may go stale (``due_cs``, a lower
bound) for the sweeper to find it. A note without a deadline (written by an earlier
version) is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from nf.clock import utc

NOTES = "cs"
DUE = "due_cs"

Notes = Mapping[str, Any]


def stale_at(note: Any, grace: timedelta) -> datetime | None:
    """When ``note`` may be dropped (None: never)."""
    if not isinstance(note, dict) or note.get("e") is None:
        return None
    return utc(note["e"]) + grace


def live(notes: Notes, now: datetime, grace: timedelta) -> dict[str, Any]:
    """``notes`` without the stale ones."""
    out: dict[str, Any] = {}
    for ref, n in notes.items():
        at = stale_at(n, grace)
        if at is None or at > now:
            out[ref] = n
    return out


def due(notes: Notes, grace: timedelta) -> datetime | None:
    """The earliest moment one of ``notes`` may go stale (None: none will)."""
    return min((t for t in (stale_at(n, grace) for n in notes.values()) if t is not None),
               default=None)


def write(notes: Notes, ref: str, note: dict[str, Any] | None, stored_due: Any,
          now: datetime, grace: timedelta) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The ``$set`` and ``$unset`` paths of a wallet write that sets the note of ``ref``
    (``note``), or drops it (None): besides, the stale notes of other sessions dropped and
    ``due_cs`` moved earlier when the notes left call for it (only earlier: it stays a
    lower bound without a write per step)."""
    others = {k: n for k, n in notes.items() if k != ref}
    kept = live(others, now, grace)
    st: dict[str, Any] = {}
    un = [f"{NOTES}.{k}" for k in others if k not in kept]
    if note is not None:
        kept[ref] = note
        st[f"{NOTES}.{ref}"] = note
    elif ref in notes:
        un.append(f"{NOTES}.{ref}")
    d = due(kept, grace)
    if d is not None and (stored_due is None or d < utc(stored_due)):
        st[DUE] = d
    return st, tuple(un)
