"""What the CHF and PCF may ask of the EDR writer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class EdrSink(Protocol):
    async def write(self, edr: Mapping[str, Any]) -> None:
        """Return once the record is stored. Records from concurrent requests are written
        together (group commit), so a request waits for at most one batched insert and
        adds no round trip of its own. Raises ``nf.errors.Congestion`` when the buffer is
        full."""
        ...
