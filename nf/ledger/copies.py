"""This process's copies of wallet documents, its member -> group hints, and its per-wallet
locks: what lets a warm charging step be one round trip (see ``nf.ledger.repo``).

A copy may be stale: every write made from it is conditional on its version, so a stale
copy is found out by the write and read again. A copy is updated in place with exactly
what was written (``apply``), never re-read after a write.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from nf.ledger.codec import Doc

HOMES_MAX = 200_000  # member -> group mappings remembered per process
DOC_CACHE = 10_000  # wallet documents remembered per process (LRU)
# In this process's copy of a wallet document: how many pending entries (``fx``) it holds
# at most, counting those this process pushed since it read it (the copy does not keep
# them; deliveries acknowledged since only lower the true number).
HELD = "\x00fx_held"


class Copies:
    """The wallet documents this process last read or wrote (a bounded LRU) and the
    wallet each family member was last found in (a hint, checked on every read)."""

    def __init__(self, size: int = DOC_CACHE) -> None:
        self._docs: OrderedDict[str, Doc] = OrderedDict()
        self._max = size
        self._homes: dict[str, str] = {}

    def home(self, supi: str) -> str:
        """The id of the wallet ``supi`` was last found in (its own id if not known)."""
        return self._homes.get(supi, supi)

    def hinted(self, supi: str) -> str | None:
        return self._homes.get(supi)

    def set_home(self, supi: str, wallet_id: str) -> None:
        if len(self._homes) >= HOMES_MAX:
            self._homes.clear()
        self._homes[supi] = wallet_id

    def drop_home(self, supi: str) -> None:
        self._homes.pop(supi, None)

    def remember(self, doc: Doc) -> None:
        if self._max <= 0 or doc.get("kind") == "ptr" or doc.get("moving"):
            return
        self._docs[doc["_id"]] = doc
        self._docs.move_to_end(doc["_id"])
        while len(self._docs) > self._max:
            self._docs.popitem(last=False)

    def forget(self, key: str) -> None:
        self._docs.pop(key, None)

    def cached(self, supi: str) -> Doc | None:
        """The last copy of the wallet holding ``supi`` (may be stale)."""
        doc = self._docs.get(self._homes.get(supi, supi))
        if doc is None or supi not in doc.get("supis", ()):
            return None
        return doc


def apply(doc: Doc, stored: Mapping[str, Any], unset: Iterable[str]) -> None:
    """Apply a write's ``$set`` (as the server stored it) and ``$unset`` paths to a copy."""
    for path, value in stored.items():
        _put(doc, path, value)
    for path in unset:
        _put(doc, path, None, unset=True)


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


class KeyLocks:
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


class NoLocks:
    """No queueing in the process (tests of cross-process conflicts)."""

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        yield
