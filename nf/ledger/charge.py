"""Charging as pure functions over a wallet: commit reported usage, reserve new quota,
close a session, with the idempotency of retried steps (by sequence number, see
``ChargeStep``).

A grant never mixes full-speed quota with the throttled after-cap allowance: the last
full-speed grant ends exactly at the cap and is ``final``. Roaming (serving PLMN not of the
home host network) with no valid pass for that network answers ``RATING_FAILED`` unless
the plan allows roaming without a pass, in which case the home buckets apply. A pass that is
used up answers ``QUOTA_LIMIT_REACHED``.
"""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from nf.ledger import roaming
from nf.ledger.lifetime import DEFAULT_SEQ_RETENTION, advance
from nf.ledger.port import (
    CapAction,
    ChargeOutcome,
    ChargeResult,
    ChargeStep,
    CounterChange,
    Portion,
    SubscriberStatus,
)
from nf.ledger.state import (
    AFTERCAP,
    Bucket,
    Reservation,
    SeqRecord,
    Wallet,
)
from nf.ledger.views import available, eligible, refresh, terms_of, valid_passes
from nf.ledger.work import Work, merge_portions


def plain_outcome(result: ChargeResult, *, final: bool = True, cap: CapAction | None = None,
             committed: tuple[Portion, ...] = (), overage: int = 0) -> ChargeOutcome:
    return ChargeOutcome(result=result, granted_bytes=0, final=final, throttled=False,
                         cap_action=cap, committed=committed, overage_bytes=overage)


def unknown_outcome() -> ChargeOutcome:
    return plain_outcome(ChargeResult.USER_UNKNOWN)


def find_seq(w: Wallet, supi: str, session_id: str, rg: int) -> SeqRecord | None:
    for q in w.seqs:
        if q.supi == supi and q.session_id == session_id and q.rating_group == rg:
            return q
    return None


def seq_replay(rec: SeqRecord | None, sequence: int) -> ChargeOutcome | None:
    """The answer to a step whose sequence was seen before (None: apply it). The latest
    step gets its stored outcome again; an older one, a late duplicate, gets nothing."""
    if rec is None or sequence > rec.seq:
        return None
    if sequence == rec.seq:
        return replace(rec.outcome, replay=True, counter_changes=())
    return replace(plain_outcome(ChargeResult.SUCCESS, final=False, cap=rec.outcome.cap_action),
                   replay=True)


def charge(w: Wallet, step: ChargeStep, home_plmns: frozenset[str],
           retention: timedelta = DEFAULT_SEQ_RETENTION) -> tuple[Wallet, ChargeOutcome]:
    """Commit ``step.used_bytes`` against the session's reservation for the rating group,
    release the rest, then reserve up to ``step.requested_bytes``. Pure."""
    now = step.now
    if w.member(step.supi) is None:
        return w, unknown_outcome()
    replay = seq_replay(find_seq(w, step.supi, step.session_id, step.rating_group),
                        step.sequence)
    if replay is not None:
        return w, replay
    work = Work(advance(w, now, retention))
    supi = step.supi
    m = work.members[supi]
    abroad = roaming.is_roaming(step.serving_plmn, home_plmns)
    terms = terms_of(work.w, m)
    cap = terms.cap_action if terms is not None else None

    # 1. Commit what was used against what the session held for this rating group.
    committed: list[Portion] = []
    left = max(0, step.used_bytes)
    held = next((r for r in work.res if r.supi == supi and r.session_id == step.session_id
                 and r.rating_group == step.rating_group), None)
    if held is not None:
        work.release(held)
        for p in held.portions:
            take = min(left, p.bytes)
            if take and work.use(supi, p.bucket_id, take):
                committed.append(Portion(p.bucket_id, take))
                left -= take
    # Usage beyond the reservation goes where it fits, then to the after-cap allowance,
    # then is recorded as overage.
    if left:
        snapshot = work.freeze()
        buckets, aftercap = eligible(snapshot, work.members[supi], now, step.rating_group,
                                     abroad, step.serving_plmn)
        for b in buckets:
            avail = available(work.buckets[b.id], work.members[supi])
            take = min(left, avail)
            if take and work.use(supi, b.id, take):
                committed.append(Portion(b.id, take))
                left -= take
            if not left:
                break
        if left and aftercap:
            work.use(supi, AFTERCAP, left)
            committed.append(Portion(AFTERCAP, left))
            left = 0
    overage = left
    m = work.members[supi]
    work.members[supi] = replace(m, reported=m.reported + max(0, step.used_bytes),
                                 overage=m.overage + overage)
    done = merge_portions(committed)

    # 2. Reserve new quota.
    outcome: ChargeOutcome
    if step.requested_bytes <= 0:
        outcome = plain_outcome(ChargeResult.SUCCESS, final=False, cap=cap, committed=done,
                           overage=overage)
    elif m.status is not SubscriberStatus.ACTIVE:
        outcome = plain_outcome(ChargeResult.END_USER_SERVICE_DENIED, cap=cap, committed=done,
                           overage=overage)
    else:
        snapshot = work.freeze()
        m = work.members[supi]
        buckets, aftercap = eligible(snapshot, m, now, step.rating_group, abroad,
                                     step.serving_plmn)
        no_pass = abroad and not valid_passes(snapshot, m, now, step.serving_plmn)
        if no_pass and not (terms is not None and terms.roaming_allowed):
            outcome = plain_outcome(ChargeResult.RATING_FAILED, cap=cap, committed=done,
                               overage=overage)
        else:
            outcome = _grant(work, supi, step, buckets, aftercap, cap, done, overage)
    # 3. Remember the answer for retries, per rating group by sequence.
    rec = SeqRecord(supi, step.session_id, step.rating_group, step.sequence, outcome, now)
    at = next((i for i, q in enumerate(work.seqs) if q.supi == supi
               and q.session_id == step.session_id
               and q.rating_group == step.rating_group), None)
    if at is None:
        work.seqs.append(rec)
    else:
        work.seqs[at] = rec
    new, changes = refresh(work.freeze(), now)
    return new, replace(outcome, counter_changes=changes)


def _grant(work: Work, supi: str, step: ChargeStep, buckets: list[Bucket], aftercap: bool,
           cap: CapAction | None, done: tuple[Portion, ...], overage: int) -> ChargeOutcome:
    want = step.requested_bytes
    m = work.members[supi]
    full = sum(available(work.buckets[b.id], m) for b in buckets)
    portions: list[Portion] = []
    throttled = False
    if full > 0:
        for b in buckets:
            take = min(want, available(work.buckets[b.id], work.members[supi]))
            if take:
                work.reserve(supi, b.id, take)
                portions.append(Portion(b.id, take))
                want -= take
            if not want:
                break
        granted = step.requested_bytes - want
        final = granted >= full
    elif aftercap:
        work.reserve(supi, AFTERCAP, want)
        portions.append(Portion(AFTERCAP, want))
        granted, final, throttled = want, False, True
    else:
        return plain_outcome(ChargeResult.QUOTA_LIMIT_REACHED, cap=cap, committed=done,
                        overage=overage)
    work.res.append(Reservation(supi, step.session_id, step.rating_group, tuple(portions),
                                step.reservation_expires_at))
    return ChargeOutcome(result=ChargeResult.SUCCESS, granted_bytes=granted, final=final,
                         throttled=throttled, cap_action=cap, committed=done,
                         overage_bytes=overage, reserved=tuple(portions))


def close_session(w: Wallet, supi: str, session_id: str, now: datetime,
                  retention: timedelta = DEFAULT_SEQ_RETENTION
                  ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Release every reservation the session holds; nothing is debited. The session's
    sequence records are kept ``retention`` longer, for late retries."""
    work = Work(advance(w, now, retention))
    for r in [r for r in work.res if r.supi == supi and r.session_id == session_id]:
        work.release(r)
    work.seqs = [replace(q, closed_at=now)
                 if q.supi == supi and q.session_id == session_id and q.closed_at is None
                 else q for q in work.seqs]
    new = work.freeze()
    return refresh(new, now)


def charge_request(w: Wallet, steps: Sequence[ChargeStep], home_plmns: frozenset[str],
                   retention: timedelta = DEFAULT_SEQ_RETENTION,
                   close: tuple[str, str, datetime] | None = None
                   ) -> tuple[Wallet, tuple[ChargeOutcome, ...], tuple[CounterChange, ...]]:
    """Every rating group of one charging request, in order, as one step of the wallet;
    then, with ``close`` = (supi, session, now), the session closed (what it still holds
    released). Returns the wallet (``w`` itself when nothing changed: every step a replay
    and nothing to close), the outcomes, and every counter change on the way."""
    cur = w
    outs: list[ChargeOutcome] = []
    changes: list[CounterChange] = []
    for step in steps:
        new, out = charge(cur, step, home_plmns, retention)
        if not out.replay:
            cur = new
        outs.append(out)
        changes += out.counter_changes
    if close is not None and session_open(cur, close[0], close[1]):
        cur, closed = close_session(cur, close[0], close[1], close[2], retention)
        changes += closed
    return cur, tuple(outs), tuple(changes)


def session_open(w: Wallet, supi: str, session_id: str) -> bool:
    """Whether closing the session would change anything."""
    return any(r.supi == supi and r.session_id == session_id for r in w.reservations) \
        or any(q.supi == supi and q.session_id == session_id and q.closed_at is None
               for q in w.seqs)


def sweep(w: Wallet, now: datetime, retention: timedelta = DEFAULT_SEQ_RETENTION
          ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    return refresh(advance(w, now, retention), now)
