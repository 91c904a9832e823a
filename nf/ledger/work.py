"""A mutable scratch copy of a wallet, local to one pure ledger function call."""


from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from nf.ledger.port import (
    Portion,
)
from nf.ledger.state import (
    AFTERCAP,
    Bucket,
    Member,
    Reservation,
    SeqRecord,
    Wallet,
)


class Work:
    """A mutable scratch copy of a wallet, local to one pure function call."""

    def __init__(self, w: Wallet) -> None:
        self.w = w
        self.buckets: dict[str, Bucket] = {b.id: b for b in w.buckets}
        self.members: dict[str, Member] = {m.supi: m for m in w.members}
        self.res: list[Reservation] = list(w.reservations)
        self.seqs: list[SeqRecord] = list(w.seqs)

    def freeze(self, **changes: object) -> Wallet:
        return replace(self.w, buckets=tuple(self.buckets.values()),
                       members=tuple(self.members.values()),
                       reservations=tuple(self.res), seqs=tuple(self.seqs),
                       **changes)  # type: ignore[arg-type]

    def unreserve(self, supi: str, p: Portion) -> None:
        m = self.members.get(supi)
        if p.bucket_id == AFTERCAP:
            if m is not None:
                self.members[supi] = replace(
                    m, aftercap_reserved=max(0, m.aftercap_reserved - p.bytes))
            return
        b = self.buckets.get(p.bucket_id)
        if b is None:
            return
        self.buckets[b.id] = replace(b, reserved=max(0, b.reserved - p.bytes))
        if b.kind == "pool" and m is not None:
            self.members[supi] = replace(m, pool_reserved=max(0, m.pool_reserved - p.bytes))

    def reserve(self, supi: str, bucket_id: str, n: int) -> None:
        m = self.members[supi]
        if bucket_id == AFTERCAP:
            self.members[supi] = replace(m, aftercap_reserved=m.aftercap_reserved + n)
            return
        b = self.buckets[bucket_id]
        self.buckets[bucket_id] = replace(b, reserved=b.reserved + n)
        if b.kind == "pool":
            self.members[supi] = replace(m, pool_reserved=m.pool_reserved + n)

    def use(self, supi: str, bucket_id: str, n: int) -> bool:
        """Debit ``n`` used bytes (the caller made sure they fit). False if gone."""
        m = self.members[supi]
        if bucket_id == AFTERCAP:
            self.members[supi] = replace(m, aftercap_used=m.aftercap_used + n)
            return True
        b = self.buckets.get(bucket_id)
        if b is None:
            return False
        self.buckets[bucket_id] = replace(b, used=b.used + n)
        if b.kind == "pool":
            self.members[supi] = replace(m, pool_used=m.pool_used + n)
        return True

    def release(self, r: Reservation) -> None:
        for p in r.portions:
            self.unreserve(r.supi, p)
        self.res.remove(r)


def merge_portions(portions: Iterable[Portion]) -> tuple[Portion, ...]:
    acc: dict[str, int] = {}
    for p in portions:
        if p.bytes > 0:
            acc[p.bucket_id] = acc.get(p.bucket_id, 0) + p.bytes
    return tuple(Portion(k, v) for k, v in acc.items())
