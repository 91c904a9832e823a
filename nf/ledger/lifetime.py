"""What time does to a wallet, as pure functions: expired reservations released, periods
renewed (with rollover), expired add-ons, passes and boosts removed, old sequence records
forgotten; and when a sweeper should look again."""


from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from nf.ledger.state import (
    POOL,
    Bucket,
    SeqRecord,
    Terms,
    Wallet,
)
from nf.ledger.work import Work

# Sequence records of a closed session are kept this long, for late retries (the
# ``ledger.seq_retention_s`` setting).
DEFAULT_SEQ_RETENTION = timedelta(minutes=5)
# Sequence records of a session never closed are dropped when idle this long with nothing
# reserved; a wallet keeps at most MAX_SEQS of them (oldest dropped first).
SEQ_IDLE = timedelta(days=1)
MAX_SEQS = 256


# ------------------------------------------------------------------------------- lifetime


def _periods(end: datetime, days: int, now: datetime) -> tuple[datetime, datetime, int]:
    """Move a period that ended at ``end`` forward until it contains ``now``.
    Returns (start, end, periods skipped); at least one step when ``end <= now``."""
    step = timedelta(days=days)
    n = 0
    if now - end > 3 * step:  # long idle: jump, keep at most one rollover step
        k = (now - end) // step - 1
        end += k * step
        n += k
    start = end
    while end <= now:
        start, end = end, end + step
        n += 1
    return start, end, n


def _renew(b: Bucket, t: Terms, start: datetime) -> Bucket:
    roll = 0
    if t.rollover:
        unused = max(0, b.quota - b.used - b.reserved)
        limit = t.rollover_max if t.rollover_max is not None else t.allowance
        roll = min(unused, limit)
    quota = max(t.allowance + roll, b.reserved)
    return replace(b, quota=quota, used=0, valid_from=min(start, b.valid_from))


def prune_seqs(seqs: Iterable[SeqRecord], held: set[tuple[str, str, int]], now: datetime,
               retention: timedelta = DEFAULT_SEQ_RETENTION) -> list[SeqRecord]:
    """The sequence records still worth keeping: not those of a session closed longer than
    ``retention`` ago, nor those idle for ``SEQ_IDLE`` with nothing ``held``; at most
    ``MAX_SEQS`` (closed ones, then the least recently used, go first)."""
    keep = [q for q in seqs
            if (q.closed_at is None or q.closed_at > now - retention)
            and (q.at > now - SEQ_IDLE or (q.supi, q.session_id, q.rating_group) in held)]
    if len(keep) > MAX_SEQS:
        keep.sort(key=lambda q: (q.closed_at is None, q.at))
        keep = keep[len(keep) - MAX_SEQS:]
    return keep


def advance(w: Wallet, now: datetime, retention: timedelta = DEFAULT_SEQ_RETENTION) -> Wallet:
    """Everything time does to a wallet: expired reservations released, periods renewed
    (with rollover), expired add-ons, passes and boosts removed, old sequence records
    forgotten."""
    work = Work(w)
    for r in [r for r in work.res if r.expires_at <= now]:
        work.release(r)
    if work.seqs:
        held = {(r.supi, r.session_id, r.rating_group) for r in work.res}
        work.seqs = prune_seqs(work.seqs, held, now, retention)
    fam_start, fam_end = w.family_period_start, w.family_period_end
    if w.family is not None and fam_end is not None and fam_end <= now:
        fam_start, fam_end, _n = _periods(fam_end, w.family.period_days, now)
        pool = work.buckets.get(POOL)
        if pool is not None:
            work.buckets[POOL] = _renew(pool, w.family, fam_start)
        for supi, m in list(work.members.items()):
            work.members[supi] = replace(
                m, pool_used=0, aftercap_used=m.aftercap_used if m.plan else 0)
    for supi, m in list(work.members.items()):
        if m.plan is not None and m.period_end is not None and m.period_end <= now:
            start, end, _n = _periods(m.period_end, m.plan.period_days, now)
            for b in list(work.buckets.values()):
                if b.kind == "plan" and b.owner == supi and b.valid_to is None:
                    work.buckets[b.id] = _renew(b, m.plan, start)
            m = replace(m, period_start=start, period_end=end, aftercap_used=0)
        boosts = tuple(b for b in m.boosts if b.valid_to > now)
        if boosts != m.boosts:
            m = replace(m, boosts=boosts)
        work.members[supi] = m
    for b in list(work.buckets.values()):
        if b.valid_to is not None and b.valid_to <= now and b.reserved == 0:
            del work.buckets[b.id]
    return work.freeze(family_period_start=fam_start, family_period_end=fam_end)


def due(w: Wallet, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(next reservation expiry, next renewal/expiry after ``now``): when a sweeper should
    look at the wallet again."""
    res = min((r.expires_at for r in w.reservations), default=None)
    times: list[datetime] = [b.valid_to for b in w.buckets if b.valid_to is not None]
    times += [m.period_end for m in w.members if m.period_end is not None]
    times += [b.valid_to for m in w.members for b in m.boosts]
    if w.family_period_end is not None:
        times.append(w.family_period_end)
    return res, min((t for t in times if t > now), default=None)
