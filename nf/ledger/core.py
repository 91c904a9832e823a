"""The ledger's decisions as pure functions over a ``Wallet``: no I/O, no clock, no logging.

``charge(wallet, step, ...) -> (wallet', outcome)`` commits reported usage and reserves new
quota for one rating group; ``close_session``, ``sweep``, ``purchase``, ``set_status`` and
the family-group functions work the same way. The store loads a wallet, calls one of these
and writes the result back with one conditional replace.

Consumption order for a member: a roaming pass whose zone holds the serving network (while
roaming), then add-ons (soonest expiring first, those restricted to the rating group
included), then the member's plan, then the family pool within the member's cap. A grant
never mixes full-speed quota with the throttled after-cap allowance: the last full-speed
grant ends exactly at the cap and is ``final``.

Roaming (serving PLMN not of the home host network) with no valid pass for that network
answers ``RATING_FAILED`` unless the plan allows roaming without a pass, in which case the
home buckets apply. A pass that is used up answers ``QUOTA_LIMIT_REACHED``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from nf.catalog.model import AddOn, AnyOffer, BasePlan, FamilyPlan, RoamingPass, SpeedBoost
from nf.errors import Conflict, Unprocessable
from nf.ledger.port import (
    CapAction,
    CapState,
    ChargeOutcome,
    ChargeResult,
    ChargeStep,
    CounterChange,
    PolicyCounters,
    Portion,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
)
from nf.ledger.state import (
    AFTERCAP,
    POOL,
    Boost,
    Bucket,
    Member,
    OpRecord,
    Reservation,
    Seen,
    SeqRecord,
    Terms,
    Wallet,
)

# Speed of a member who has quota (add-ons) but no plan at all.
DEFAULT_SPEED = Speed(uplink_kbps=1024, downlink_kbps=1024)
DEFAULT_OP_RING = 32
DEFAULT_OP_RETENTION = timedelta(minutes=5)
# Sequence records of a session never closed are dropped when idle this long with nothing
# reserved; a wallet keeps at most MAX_SEQS of them (oldest dropped first).
SEQ_IDLE = timedelta(days=1)
MAX_SEQS = 256


# ---------------------------------------------------------------------------------- views


def terms_of(w: Wallet, m: Member) -> Terms | None:
    """The recurring terms that govern the member's speed and cap: own plan, else family."""
    return m.plan if m.plan is not None else w.family


def _rg_ok(b: Bucket, rg: int | None) -> bool:
    if b.rating_groups is None:
        return True
    return rg is not None and rg in b.rating_groups


def _cap_left(m: Member) -> int | None:
    return None if m.cap is None else max(0, m.cap - m.pool_used - m.pool_reserved)


def _home_buckets(w: Wallet, m: Member, now: datetime, rg: int | None) -> list[Bucket]:
    mine = [b for b in w.buckets if b.owner == m.supi and b.valid_at(now) and _rg_ok(b, rg)]
    addons = sorted((b for b in mine if b.kind == "addon"),
                    key=lambda b: (b.valid_to is None, b.valid_to or now, b.id))
    plans = [b for b in mine if b.kind == "plan"]
    pool = [b for b in w.buckets if b.kind == "pool" and b.valid_at(now)
            and w.group_id is not None]
    return addons + plans + pool


def _passes(w: Wallet, m: Member, now: datetime, plmn: str) -> list[Bucket]:
    found = [b for b in w.buckets if b.owner == m.supi and b.kind == "roaming"
             and b.valid_at(now) and b.zone is not None and plmn in b.zone]
    return sorted(found, key=lambda b: (b.valid_to or now, b.id))


def _available(b: Bucket, m: Member) -> int:
    if b.kind == "pool":
        left = _cap_left(m)
        return max(0, b.available if left is None else min(b.available, left))
    return max(0, b.available)


def eligible(w: Wallet, m: Member, now: datetime, rg: int | None, roaming: bool,
             plmn: str) -> tuple[list[Bucket], bool]:
    """Buckets a grant may draw from, in consumption order, and whether the after-cap
    allowance applies. Roaming with no pass and no permission gives ([], False)."""
    terms = terms_of(w, m)
    throttle = terms is not None and terms.cap_action is CapAction.THROTTLE
    if not roaming:
        return _home_buckets(w, m, now, rg), throttle
    passes = _passes(w, m, now, plmn)
    if terms is not None and terms.roaming_allowed:
        return passes + _home_buckets(w, m, now, rg), throttle
    return passes, False


def counters(w: Wallet, m: Member, now: datetime) -> PolicyCounters:
    headroom = 0
    for b in _home_buckets(w, m, now, None):
        left = b.quota - b.used
        if b.kind == "pool" and m.cap is not None:
            left = min(left, m.cap - m.pool_used)
        headroom += max(0, left)
    roam = [b for b in w.buckets if b.owner == m.supi and b.kind == "roaming"
            and b.valid_at(now)]
    if not roam:
        rs = RoamingState.NONE
    elif any(b.quota > b.used for b in roam):
        rs = RoamingState.AVAILABLE
    else:
        rs = RoamingState.EXHAUSTED
    return PolicyCounters(
        data_cap=CapState.EXHAUSTED if headroom <= 0 else CapState.NORMAL, roaming=rs)


def speed(w: Wallet, m: Member, now: datetime) -> SpeedView:
    """The session speed the member should have now: blocked, throttled, boost or plan."""
    terms = terms_of(w, m)
    base = terms.speed if terms is not None else DEFAULT_SPEED
    if m.status is not SubscriberStatus.ACTIVE:
        return SpeedView(base, "blocked")
    if m.fraud_speed is not None:
        return SpeedView(m.fraud_speed, "fraud")
    if counters(w, m, now).data_cap is CapState.EXHAUSTED:
        if terms is not None and terms.cap_action is CapAction.THROTTLE \
                and terms.throttle_speed is not None:
            return SpeedView(terms.throttle_speed, "throttled")
        return SpeedView(base, "blocked")
    boosts = [b for b in m.boosts if b.valid_from <= now < b.valid_to]
    if boosts:
        best = max(boosts, key=lambda b: (b.speed.downlink_kbps, b.valid_to))
        return SpeedView(best.speed, "boost", boost_ends_at=best.valid_to)
    return SpeedView(base, "plan")


def seen_of(w: Wallet, m: Member, now: datetime) -> Seen:
    return Seen(counters(w, m, now), speed(w, m, now), m.status)


def refresh(w: Wallet, now: datetime) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Counter changes between each member's last published view and their view now;
    the returned wallet remembers the new views."""
    out = []
    members = []
    for m in w.members:
        new = seen_of(w, m, now)
        old = m.seen
        members.append(m if old == new else replace(m, seen=new))
        if old is None or old == new:
            continue
        restored = (
            (old.counters.data_cap is CapState.EXHAUSTED
             and new.counters.data_cap is CapState.NORMAL)
            or (old.counters.roaming is not RoamingState.AVAILABLE
                and new.counters.roaming is RoamingState.AVAILABLE)
            or (old.status is not SubscriberStatus.ACTIVE
                and new.status is SubscriberStatus.ACTIVE))
        out.append(CounterChange(
            supi=m.supi, before=old.counters, after=new.counters, speed=new.speed,
            status=new.status, status_before=old.status, quota_restored=restored))
    return replace(w, members=tuple(members)), tuple(out)


# ---------------------------------------------------------------------------- working copy


class _Work:
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


def _merge(portions: Iterable[Portion]) -> tuple[Portion, ...]:
    acc: dict[str, int] = {}
    for p in portions:
        if p.bytes > 0:
            acc[p.bucket_id] = acc.get(p.bucket_id, 0) + p.bytes
    return tuple(Portion(k, v) for k, v in acc.items())


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
               retention: timedelta = DEFAULT_OP_RETENTION) -> list[SeqRecord]:
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


def advance(w: Wallet, now: datetime, retention: timedelta = DEFAULT_OP_RETENTION) -> Wallet:
    """Everything time does to a wallet: expired reservations released, periods renewed
    (with rollover), expired add-ons, passes and boosts removed, old sequence records
    forgotten."""
    work = _Work(w)
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


# --------------------------------------------------------------------------------- charge


def _outcome(result: ChargeResult, *, final: bool = True, cap: CapAction | None = None,
             committed: tuple[Portion, ...] = (), overage: int = 0) -> ChargeOutcome:
    return ChargeOutcome(result=result, granted_bytes=0, final=final, throttled=False,
                         cap_action=cap, committed=committed, overage_bytes=overage)


def unknown_outcome() -> ChargeOutcome:
    return _outcome(ChargeResult.USER_UNKNOWN)


def find_op(w: Wallet, supi: str, op_key: str) -> ChargeOutcome | None:
    m = w.member(supi)
    if m is None:
        return None
    for rec in m.ops:
        if rec.op_key == op_key:
            return replace(rec.outcome, replay=True, counter_changes=())
    return None


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
    return replace(_outcome(ChargeResult.SUCCESS, final=False, cap=rec.outcome.cap_action),
                   replay=True)


def charge(w: Wallet, step: ChargeStep, home_plmns: frozenset[str],
           ring: int = DEFAULT_OP_RING, retention: timedelta = DEFAULT_OP_RETENTION
           ) -> tuple[Wallet, ChargeOutcome]:
    """Commit ``step.used_bytes`` against the session's reservation for the rating group,
    release the rest, then reserve up to ``step.requested_bytes``. Pure."""
    now = step.now
    if w.member(step.supi) is None:
        return w, unknown_outcome()
    seq_rec: SeqRecord | None = None
    if step.sequence is not None:
        seq_rec = find_seq(w, step.supi, step.session_id, step.rating_group)
        replay = seq_replay(seq_rec, step.sequence)
    else:
        replay = find_op(w, step.supi, step.op_key)
    if replay is not None:
        return w, replay
    work = _Work(advance(w, now, retention))
    supi = step.supi
    m = work.members[supi]
    roaming = step.serving_plmn not in home_plmns
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
                                     roaming, step.serving_plmn)
        for b in buckets:
            avail = _available(work.buckets[b.id], work.members[supi])
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
    done = _merge(committed)

    # 2. Reserve new quota.
    outcome: ChargeOutcome
    if step.requested_bytes <= 0:
        outcome = _outcome(ChargeResult.SUCCESS, final=False, cap=cap, committed=done,
                           overage=overage)
    elif m.status is not SubscriberStatus.ACTIVE:
        outcome = _outcome(ChargeResult.END_USER_SERVICE_DENIED, cap=cap, committed=done,
                           overage=overage)
    else:
        snapshot = work.freeze()
        m = work.members[supi]
        buckets, aftercap = eligible(snapshot, m, now, step.rating_group, roaming,
                                     step.serving_plmn)
        no_pass = roaming and not _passes(snapshot, m, now, step.serving_plmn)
        if no_pass and not (terms is not None and terms.roaming_allowed):
            outcome = _outcome(ChargeResult.RATING_FAILED, cap=cap, committed=done,
                               overage=overage)
        else:
            outcome = _grant(work, supi, step, buckets, aftercap, cap, done, overage)
    # 3. Remember the answer for retries: per rating group by sequence, else in the ring.
    if step.sequence is not None:
        rec = SeqRecord(supi, step.session_id, step.rating_group, step.sequence, outcome, now)
        at = next((i for i, q in enumerate(work.seqs) if q.supi == supi
                   and q.session_id == step.session_id
                   and q.rating_group == step.rating_group), None)
        if at is None:
            work.seqs.append(rec)
        else:
            work.seqs[at] = rec
    else:
        m = work.members[supi]
        work.members[supi] = replace(
            m, ops=_remember(m.ops, OpRecord(step.op_key, outcome, now), ring, retention, now))
    new, changes = refresh(work.freeze(), now)
    return new, replace(outcome, counter_changes=changes)


def _remember(ops: tuple[OpRecord, ...], rec: OpRecord, ring: int, retention: timedelta,
              now: datetime) -> tuple[OpRecord, ...]:
    """Keep the last ``ring`` keys, and younger ones beyond that up to 8 x ``ring``: a
    retry that comes while many other steps of the subscriber go on is still recognised."""
    out = [*ops, rec]
    ring = max(1, ring)
    drop = 0
    while len(out) - drop > ring:
        oldest = out[drop]
        if len(out) - drop > 8 * ring or oldest.at is None or oldest.at <= now - retention:
            drop += 1
        else:
            break
    return tuple(out[drop:])


def _grant(work: _Work, supi: str, step: ChargeStep, buckets: list[Bucket], aftercap: bool,
           cap: CapAction | None, done: tuple[Portion, ...], overage: int) -> ChargeOutcome:
    want = step.requested_bytes
    m = work.members[supi]
    full = sum(_available(work.buckets[b.id], m) for b in buckets)
    portions: list[Portion] = []
    throttled = False
    if full > 0:
        for b in buckets:
            take = min(want, _available(work.buckets[b.id], work.members[supi]))
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
        return _outcome(ChargeResult.QUOTA_LIMIT_REACHED, cap=cap, committed=done,
                        overage=overage)
    work.res.append(Reservation(supi, step.session_id, step.rating_group, tuple(portions),
                                step.reservation_expires_at))
    return ChargeOutcome(result=ChargeResult.SUCCESS, granted_bytes=granted, final=final,
                         throttled=throttled, cap_action=cap, committed=done,
                         overage_bytes=overage, reserved=tuple(portions))


def close_session(w: Wallet, supi: str, session_id: str, now: datetime,
                  retention: timedelta = DEFAULT_OP_RETENTION
                  ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Release every reservation the session holds; nothing is debited. The session's
    sequence records are kept ``retention`` longer, for late retries."""
    work = _Work(advance(w, now, retention))
    for r in [r for r in work.res if r.supi == supi and r.session_id == session_id]:
        work.release(r)
    work.seqs = [replace(q, closed_at=now)
                 if q.supi == supi and q.session_id == session_id and q.closed_at is None
                 else q for q in work.seqs]
    new = work.freeze()
    return refresh(new, now)


def session_open(w: Wallet, supi: str, session_id: str) -> bool:
    """Whether closing the session would change anything."""
    return any(r.supi == supi and r.session_id == session_id for r in w.reservations) \
        or any(q.supi == supi and q.session_id == session_id and q.closed_at is None
               for q in w.seqs)


def sweep(w: Wallet, now: datetime, retention: timedelta = DEFAULT_OP_RETENTION
          ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    return refresh(advance(w, now, retention), now)


# ------------------------------------------------------------------------ status, purchase


def set_status(w: Wallet, supi: str, status: SubscriberStatus, now: datetime
               ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    work = _Work(advance(w, now))
    m = work.members[supi]
    # Reinstating a subscriber also lifts a fraud throttle.
    work.members[supi] = replace(m, status=status, fraud_speed=(
        None if status is SubscriberStatus.ACTIVE else m.fraud_speed))
    new = work.freeze()
    return refresh(new, now)


def set_fraud_speed(w: Wallet, supi: str, fraud_speed: Speed | None, now: datetime
                    ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Throttle a member for fraud (``fraud_speed``) or lift it (None)."""
    work = _Work(advance(w, now))
    work.members[supi] = replace(work.members[supi], fraud_speed=fraud_speed)
    return refresh(work.freeze(), now)


def plan_terms(o: BasePlan | FamilyPlan) -> Terms:
    thr = o.at_cap.throttle_speed
    return Terms(
        offer_id=o.id, offer_version=o.version, kind=o.kind, period_days=o.period_days,
        allowance=o.allowance_bytes if isinstance(o, BasePlan) else o.pool_bytes,
        speed=Speed(o.speed.uplink_kbps, o.speed.downlink_kbps),
        cap_action=CapAction(o.at_cap.action),
        throttle_speed=Speed(thr.uplink_kbps, thr.downlink_kbps) if thr else None,
        rollover=o.rollover,
        rollover_max=None if o.rollover_max_mb is None else o.rollover_max_mb * 1024 * 1024,
        roaming_allowed=o.roaming.allowed_without_pass,
        member_cap=(o.member_cap_mb * 1024 * 1024
                    if isinstance(o, FamilyPlan) and o.member_cap_mb is not None else None),
        max_members=o.max_members if isinstance(o, FamilyPlan) else 1,
    )


def purchase(w: Wallet, supi: str, offer: AnyOffer, now: datetime, bucket_id: str
             ) -> tuple[Wallet, tuple[CounterChange, ...]]:
    """Add what ``offer`` gives to the member. Family plans are bought with ``new_group``.
    Raises ``Conflict`` for a second non-stackable add-on still running."""
    work = _Work(advance(w, now))
    m = work.members[supi]
    if isinstance(offer, BasePlan):
        for b in list(work.buckets.values()):
            if b.kind == "plan" and b.owner == supi and b.valid_to is None:
                if b.reserved:
                    work.buckets[b.id] = replace(b, valid_to=now)
                else:
                    del work.buckets[b.id]
        t = plan_terms(offer)
        work.buckets[bucket_id] = Bucket(
            id=bucket_id, kind="plan", offer_id=offer.id, offer_version=offer.version,
            quota=t.allowance, valid_from=now, valid_to=None, owner=supi)
        work.members[supi] = replace(m, plan=t, period_start=now,
                                     period_end=now + timedelta(days=t.period_days),
                                     aftercap_used=0)
    elif isinstance(offer, AddOn):
        if not offer.stackable and any(
                b.offer_id == offer.id and b.owner == supi and b.valid_at(now)
                and b.quota > b.used for b in work.buckets.values()):
            raise Conflict(f"offer {offer.id} is not stackable and one is still running")
        work.buckets[bucket_id] = Bucket(
            id=bucket_id, kind="addon", offer_id=offer.id, offer_version=offer.version,
            quota=offer.quota_bytes, valid_from=now,
            valid_to=now + timedelta(hours=offer.duration_hours), owner=supi,
            rating_groups=tuple(offer.rating_groups) if offer.rating_groups else None)
    elif isinstance(offer, RoamingPass):
        work.buckets[bucket_id] = Bucket(
            id=bucket_id, kind="roaming", offer_id=offer.id, offer_version=offer.version,
            quota=offer.quota_bytes, valid_from=now,
            valid_to=now + timedelta(hours=offer.duration_hours), owner=supi,
            zone=tuple(offer.zone), zone_name=offer.zone_name)
    elif isinstance(offer, SpeedBoost):
        span = timedelta(hours=offer.duration_hours)
        running = [b for b in m.boosts if b.offer_id == offer.id and b.valid_to > now]
        others = tuple(b for b in m.boosts if b not in running)
        start = now
        end = max((b.valid_to for b in running), default=now) + span
        if running:
            start = min(b.valid_from for b in running)
        boost = Boost(offer.id, offer.version,
                      Speed(offer.speed.uplink_kbps, offer.speed.downlink_kbps), start, end)
        work.members[supi] = replace(m, boosts=(*others, boost))
    else:
        raise Unprocessable(f"offer {offer.id} is a family plan: create a family group")
    new = work.freeze()
    return refresh(new, now)


# --------------------------------------------------------------------------- family groups


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
    work = _Work(advance(group, now))
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
    work = _Work(advance(group, now))
    m = work.members.get(supi)
    if m is None:
        raise Conflict(f"{supi} is not a member of group {group.group_id}")
    work.members[supi] = replace(m, cap=cap)
    new = work.freeze()
    return refresh(new, now)
