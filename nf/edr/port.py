"""What the CHF and PCF may ask of the EDR writer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class EdrSink(Protocol):
    async def write(self, edr: Mapping[str, Any]) -> None:
        """Return once the record is stored. Records from concurrent requests are written
        together (group commit), so a request waits for at most one batched insert and
        adds no round trip of its own. Raises ``nf.errors.Congestion`` when the buffer is
        full."""
        ...

    async def write_many(self, edrs: Sequence[Mapping[str, Any]]) -> None:
        """Store records kept durable elsewhere until this returns (pending entries), in one
        insert; raises the first refused record's error (then none of them counts as
        delivered; stored ones are duplicates next time)."""
        ...
