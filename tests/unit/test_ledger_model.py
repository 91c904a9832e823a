"""The pure ledger core driven by hypothesis.stateful against a small reference model.

The model keeps, per member, the usage reported and the grants outstanding per (session,
rating group), and knows nothing of buckets. After every step the invariants are checked:
every bucket ``0 <= used + reserved <= quota``; reservations add up to the buckets'
``reserved``; committed usage equals reported usage (used + after-cap + overage); no member
above their cap and the pool never overdrawn; a grant never exceeds the request. Every
step carries its sequence number (as the CHF sends it, increasing per session and rating
group, with gaps) and is retried at random: the latest step of a rating group replays its
first answer, an older one (a late duplicate) changes nothing and grants nothing, also
after the session was closed (within the retention time) or its member left the family.
A closed session is not used again (the CHF opens a new one).

Time also crosses period boundaries (plans and the family pool renew, add-ons expire),
possibly with reservations open across the boundary: what a renewal or an expiry takes
out of the books is *retired* (never negative, reported usage never changes), and the
books balance again from there. A family member may leave the group with reservations
open: their holds on the pool are released, those on their own buckets move with them,
and their usage so far stays in the pool (``departed``) until the pool renews.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from nf.catalog import load_catalog
from nf.catalog.model import FamilyPlan
from nf.ledger import core
from nf.ledger.port import ChargeResult, ChargeStep, SubscriberStatus
from nf.ledger.state import AFTERCAP, POOL, Member, Wallet
from tests.ledger.helpers import TEST_CATALOG

CAT = load_catalog(TEST_CATALOG)
HOME = frozenset({"00101"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIB = 1024 * 1024
SOLO = "imsi-001010000000001"
FAMILY = ("imsi-001010000000002", "imsi-001010000000003", "imsi-001010000000004")


def _offer(oid: str):  # type: ignore[no-untyped-def]
    found = CAT.offer(oid)
    assert found is not None
    return found[1]


def _solo(now: datetime, plan: str) -> Wallet:
    w = Wallet(id=SOLO, members=(Member(supi=SOLO, brand="testco", home_network="n"),))
    w, _ = core.purchase(w, SOLO, _offer(plan), now, "plan1")
    w, _ = core.purchase(w, SOLO, _offer("t-addon-video"), now, "video")
    w, _ = core.purchase(w, SOLO, _offer("t-addon-2"), now, "addon")
    w, _ = core.purchase(w, SOLO, _offer("t-roam-north"), now, "pass")
    return w


def _family(now: datetime) -> Wallet:
    offer = _offer("t-family")
    assert isinstance(offer, FamilyPlan)
    g = core.new_group("g1", offer, FAMILY[0], now)
    for supi, cap in zip(FAMILY, (None, 3 * MIB, 6 * MIB), strict=True):
        solo = Wallet(id=supi, members=(Member(supi=supi, brand="testco", home_network="n"),))
        if supi == FAMILY[2]:
            solo, _ = core.purchase(solo, supi, _offer("t-addon-2"), now, "addon-" + supi)
        g, _ = core.attach(g, solo, supi, cap, now)
    return g


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.wallets: dict[str, Wallet] = {}
        self.reported: dict[str, int] = {}
        self.outstanding: dict[tuple[str, str, int], tuple[int, datetime]] = {}
        # (supi, session, rg) -> the steps sent and their first outcome
        self.sequenced: dict[tuple[str, str, int], list[tuple[ChargeStep, object]]] = {}
        self.closed: dict[tuple[str, str], datetime] = {}
        self.opened: dict[tuple[str, str], int] = {}  # (supi, name) -> sessions closed
        self.home: dict[str, str] = {}  # member -> wallet key
        self.retired: dict[str, int] = {}  # usage taken out of the books by time
        self.departed = 0  # pool usage of members who left, until the pool renews
        self.renewals = 0

    @initialize(plan=st.sampled_from(["t-capped", "t-unlimited", "t-roamer"]))
    def setup(self, plan: str) -> None:
        self.wallets = {SOLO: _solo(self.now, plan), "grp:g1": _family(self.now)}
        self.reported = {s: 0 for s in (SOLO, *FAMILY)}
        self.retired = {s: 0 for s in (SOLO, *FAMILY)}
        self.home = {SOLO: SOLO, **{s: "grp:g1" for s in FAMILY}}

    def _wallet_of(self, supi: str) -> str:
        return self.home[supi]

    @staticmethod
    def _accounted(w: Wallet) -> dict[str, int]:
        return {m.supi: sum(b.used for b in w.buckets if b.owner == m.supi) + m.pool_used
                + m.aftercap_used + m.overage for m in w.members}

    def _advance_to(self, now: datetime) -> None:
        """Time passes to ``now``: every wallet swept; what left the books is retired."""
        self.now = now
        for key in self.wallets:
            w = self.wallets[key]
            before, reported = self._accounted(w), {m.supi: m.reported for m in w.members}
            fam_end = w.family_period_end
            new, _ = core.sweep(w, now)
            after = self._accounted(new)
            for supi, n in before.items():
                assert n - after[supi] >= 0, "time added usage"
                self.retired[supi] += n - after[supi]
            assert {m.supi: m.reported for m in new.members} == reported
            if fam_end is not None and new.family_period_end != fam_end:
                self.departed = 0  # the pool renewed
                assert next(b for b in new.buckets if b.id == POOL).used == 0
            for m in new.members:
                old = w.member(m.supi)
                if old is not None and old.period_end != m.period_end:
                    self.renewals += 1
                    assert all(b.used == 0 for b in new.buckets
                               if b.owner == m.supi and b.kind == "plan")
            self.wallets[key] = new
        for k, (_n, exp) in list(self.outstanding.items()):
            if exp <= self.now:
                del self.outstanding[k]

    def _apply(self, supi: str, step: ChargeStep) -> None:
        key = self._wallet_of(supi)
        new, out = core.charge(self.wallets[key], step, HOME)
        assert not out.replay
        assert 0 <= out.granted_bytes <= step.requested_bytes
        assert sum(p.bytes for p in out.committed) + out.overage_bytes == step.used_bytes
        if out.result is not ChargeResult.SUCCESS:
            assert out.granted_bytes == 0
        if out.throttled:
            assert all(p.bucket_id == AFTERCAP for p in out.reserved)
        else:
            assert all(p.bucket_id != AFTERCAP for p in out.reserved)
        self.wallets[key] = new
        self.reported[supi] += step.used_bytes
        k = (supi, step.session_id, step.rating_group)
        self.outstanding.pop(k, None)
        if out.granted_bytes:
            self.outstanding[k] = (out.granted_bytes, step.reservation_expires_at)
        self.sequenced.setdefault(k, []).append((step, out))

    @precondition(lambda self: bool(self.wallets))
    @rule(supi=st.sampled_from([SOLO, *FAMILY]), name=st.sampled_from(["a", "b", "c"]),
          rg=st.sampled_from([10, 20]), gap=st.integers(1, 3),
          used=st.integers(0, 4 * MIB), requested=st.integers(0, 6 * MIB),
          roaming=st.booleans(), ttl=st.integers(1, 600))
    def charge(self, supi: str, name: str, rg: int, gap: int, used: int,
               requested: int, roaming: bool, ttl: int) -> None:
        session = self._session(supi, name)
        sent = self.sequenced.get((supi, session, rg), [])
        seq = sent[-1][0].sequence + gap if sent else gap
        self._apply(supi, ChargeStep(
            supi=supi, session_id=session, rating_group=rg,
            serving_plmn="99970" if roaming else "00101", used_bytes=used,
            requested_bytes=requested, sequence=seq,
            reservation_expires_at=self.now + timedelta(seconds=ttl), now=self.now))

    def _session(self, supi: str, name: str) -> str:
        """The open session called ``name`` of ``supi`` (a new one after each close)."""
        return f"{name}{self.opened.get((supi, name), 0)}"

    @precondition(lambda self: bool(self.sequenced))
    @rule(pick=st.integers(0, 10_000), older=st.booleans())
    def retry(self, pick: int, older: bool) -> None:
        keys = sorted(self.sequenced)
        k = keys[pick % len(keys)]
        closed = self.closed.get((k[0], k[1]))
        if closed is not None and self.now >= closed + core.DEFAULT_SEQ_RETENTION:
            return  # forgotten after the retention time: the CHF never sends it again
        sent = self.sequenced[k]
        if self.now - sent[-1][0].now >= core.SEQ_IDLE:
            return  # idle for a day: supervision closed the session long ago
        step, first = sent[-1] if not older or len(sent) < 2 else sent[pick % (len(sent) - 1)]
        key = self._wallet_of(k[0])
        w = self.wallets[key]
        new, out = core.charge(w, replace(step, now=self.now), HOME)
        assert out.replay and new is w and not out.counter_changes
        if step is sent[-1][0]:
            assert replace(out, replay=False) == replace(
                first, counter_changes=())  # type: ignore[type-var]
        else:  # a late duplicate of an older step: nothing granted, nothing debited
            assert out.granted_bytes == 0 and not out.committed and not out.reserved

    @precondition(lambda self: bool(self.sequenced))
    @rule(pick=st.integers(0, 10_000))
    def close(self, pick: int) -> None:
        """Release a session that was charged (the CHF's release or its supervision)."""
        keys = sorted({(k[0], k[1]) for k in self.sequenced} - self.closed.keys())
        if not keys:
            return
        supi, session = keys[pick % len(keys)]
        name = session[0]
        key = self._wallet_of(supi)
        self.wallets[key], _ = core.close_session(self.wallets[key], supi, session, self.now)
        for k in [k for k in self.outstanding if k[0] == supi and k[1] == session]:
            del self.outstanding[k]
        self.closed[(supi, session)] = self.now
        self.opened[(supi, name)] = self.opened.get((supi, name), 0) + 1

    @precondition(lambda self: bool(self.wallets))
    @rule(seconds=st.integers(1, 900))
    def time_passes(self, seconds: int) -> None:
        # Well inside the 30-day period and the add-ons' lives: no renewal here.
        self._advance_to(self.now + timedelta(seconds=seconds))

    @precondition(lambda self: bool(self.wallets))
    @rule(before=st.integers(1, 600))
    def to_period_end(self, before: int) -> None:
        """Jump to just before the next renewal (plan or pool): the next steps may open
        reservations that ``time_passes`` then carries across the boundary."""
        ends = [m.period_end for w in self.wallets.values() for m in w.members
                if m.period_end is not None]
        ends += [w.family_period_end for w in self.wallets.values()
                 if w.family_period_end is not None]
        target = min(ends) - timedelta(seconds=before)
        if target > self.now:
            self._advance_to(target)

    @precondition(lambda self: "grp:g1" in self.wallets
                  and len(self.wallets["grp:g1"].members) > 1)
    @rule(which=st.sampled_from(FAMILY[1:]))
    def detach(self, which: str) -> None:
        g = self.wallets["grp:g1"]
        m = g.member(which)
        if m is None:
            return
        mine = [r for r in g.reservations if r.supi == which]
        new_g, solo, _changes = core.detach(g, which, self.now)
        pool_before = next(b for b in g.buckets if b.id == POOL)
        pool_after = next(b for b in new_g.buckets if b.id == POOL)
        assert pool_after.reserved == pool_before.reserved - m.pool_reserved
        assert pool_after.used == pool_before.used  # what they used stays used
        self.departed += m.pool_used
        self.retired[which] += m.pool_used
        for r in mine:  # holds on the pool released, those on own buckets kept
            k = (r.supi, r.session_id, r.rating_group)
            own = sum(p.bytes for p in r.portions if p.bucket_id != POOL)
            if own:
                self.outstanding[k] = (own, r.expires_at)
            else:
                self.outstanding.pop(k, None)
        self.wallets["grp:g1"] = new_g
        self.wallets[which] = solo
        self.home[which] = which

    @precondition(lambda self: bool(self.wallets))
    @rule(status=st.sampled_from(list(SubscriberStatus)))
    def status(self, status: SubscriberStatus) -> None:
        self.wallets[SOLO], _ = core.set_status(self.wallets[SOLO], SOLO, status, self.now)

    @invariant()
    def sequence_records_bounded(self) -> None:
        for w in self.wallets.values():
            keys = [(q.supi, q.session_id, q.rating_group) for q in w.seqs]
            assert len(keys) == len(set(keys)) <= core.MAX_SEQS
            for q in w.seqs:
                sent = self.sequenced.get((q.supi, q.session_id, q.rating_group))
                assert sent and sent[-1][0].sequence == q.seq

    @invariant()
    def buckets_within_quota(self) -> None:
        for w in self.wallets.values():
            for b in w.buckets:
                assert b.used >= 0 and b.reserved >= 0 and b.used + b.reserved <= b.quota, b

    @invariant()
    def reservations_add_up(self) -> None:
        for w in self.wallets.values():
            per_bucket: dict[str, int] = {}
            per_member_pool: dict[str, int] = {}
            per_member_after: dict[str, int] = {}
            for r in w.reservations:
                assert r.expires_at > self.now
                for p in r.portions:
                    assert p.bytes > 0
                    if p.bucket_id == AFTERCAP:
                        per_member_after[r.supi] = per_member_after.get(r.supi, 0) + p.bytes
                    else:
                        per_bucket[p.bucket_id] = per_bucket.get(p.bucket_id, 0) + p.bytes
                    if p.bucket_id == POOL:
                        per_member_pool[r.supi] = per_member_pool.get(r.supi, 0) + p.bytes
            for b in w.buckets:
                assert per_bucket.get(b.id, 0) == b.reserved
            for m in w.members:
                assert per_member_pool.get(m.supi, 0) == m.pool_reserved
                assert per_member_after.get(m.supi, 0) == m.aftercap_reserved

    @invariant()
    def matches_reference_model(self) -> None:
        for w in self.wallets.values():
            held = {(r.supi, r.session_id, r.rating_group): r.total for r in w.reservations}
            mine = {k: n for k, (n, _e) in self.outstanding.items()
                    if self._wallet_of(k[0]) == w.id}
            assert held == mine
            for m in w.members:
                assert m.reported == self.reported[m.supi]
                own = sum(b.used for b in w.buckets if b.owner == m.supi)
                assert own + m.pool_used + m.aftercap_used + m.overage \
                    == m.reported - self.retired[m.supi]

    @invariant()
    def family_caps_and_pool(self) -> None:
        g = self.wallets.get("grp:g1")
        if g is None:
            return
        pool = next(b for b in g.buckets if b.id == POOL)
        assert sum(m.pool_used for m in g.members) + self.departed == pool.used
        assert sum(m.pool_reserved for m in g.members) == pool.reserved
        for m in g.members:
            if m.cap is not None:
                assert m.pool_used + m.pool_reserved <= m.cap


LedgerMachine.TestCase.settings = hyp_settings(max_examples=150, stateful_step_count=40,
                                               deadline=None)
TestLedgerModel = LedgerMachine.TestCase
