"""Wallets to MongoDB documents and back, and the update that turns one into another.

Short keys. Reservations (``res``) and sequence records (``sq``) are sub-documents keyed by
(supi, session, rating group), so that a charge reads and rewrites only its own; members
and buckets are arrays, updated field by field or element by element. Datetimes are stored
as BSON dates (millisecond precision, UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from nf.clock import utc
from nf.ledger.port import (
    CapAction,
    CapState,
    ChargeOutcome,
    ChargeResult,
    PolicyCounters,
    Portion,
    RoamingState,
    Speed,
    SpeedView,
    SubscriberStatus,
)
from nf.ledger.state import (
    Boost,
    Bucket,
    Member,
    Reservation,
    Seen,
    SeqRecord,
    Terms,
    Wallet,
)

Doc = dict[str, Any]
Pick = Callable[[str], bool]  # which ``res``/``sq`` keys to decode
_K = TypeVar("_K", Reservation, SeqRecord)
_ESC = str.maketrans({"%": "%25", ".": "%2E", "$": "%24", "\x00": "%00"})


def sub_key(supi: str, session_id: str, rating_group: int) -> str:
    """The field name of a (member, session, rating group) under ``res`` and ``sq``."""
    return f"{supi}|{session_id}|{rating_group}".translate(_ESC)


def session_prefix(supi: str, session_id: str) -> str:
    return f"{supi}|{session_id}|".translate(_ESC)


def _dt(v: Any) -> datetime | None:
    return None if v is None else utc(v)


def _dtr(v: Any) -> datetime:
    return utc(v)


def _speed(s: Speed) -> list[int]:
    return [s.uplink_kbps, s.downlink_kbps]


def _speed_d(v: list[int]) -> Speed:
    return Speed(int(v[0]), int(v[1]))


def _portions(ps: tuple[Portion, ...]) -> list[list[Any]]:
    return [[p.bucket_id, p.bytes] for p in ps]


def _portions_d(v: list[list[Any]]) -> tuple[Portion, ...]:
    return tuple(Portion(str(p[0]), int(p[1])) for p in v)


def terms_doc(t: Terms) -> Doc:
    return {"o": t.offer_id, "ov": t.offer_version, "k": t.kind, "pd": t.period_days,
            "al": t.allowance, "sp": _speed(t.speed), "ca": t.cap_action.value,
            "ts": _speed(t.throttle_speed) if t.throttle_speed else None,
            "ro": t.rollover, "rm": t.rollover_max, "ra": t.roaming_allowed,
            "mc": t.member_cap, "mm": t.max_members}


def terms_from(d: Doc | None) -> Terms | None:
    if d is None:
        return None
    return Terms(offer_id=d["o"], offer_version=d["ov"], kind=d["k"], period_days=d["pd"],
                 allowance=d["al"], speed=_speed_d(d["sp"]), cap_action=CapAction(d["ca"]),
                 throttle_speed=_speed_d(d["ts"]) if d.get("ts") else None,
                 rollover=d["ro"], rollover_max=d.get("rm"), roaming_allowed=d["ra"],
                 member_cap=d.get("mc"), max_members=d.get("mm", 1))


def outcome_doc(o: ChargeOutcome) -> Doc:
    return {"r": o.result.value, "g": o.granted_bytes, "f": o.final, "t": o.throttled,
            "ca": o.cap_action.value if o.cap_action else None,
            "c": _portions(o.committed), "ov": o.overage_bytes, "rs": _portions(o.reserved)}


def outcome_from(d: Doc) -> ChargeOutcome:
    return ChargeOutcome(result=ChargeResult(d["r"]), granted_bytes=d["g"], final=d["f"],
                         throttled=d["t"], cap_action=CapAction(d["ca"]) if d["ca"] else None,
                         committed=_portions_d(d["c"]), overage_bytes=d["ov"],
                         reserved=_portions_d(d["rs"]))


def _seen_doc(s: Seen | None) -> Doc | None:
    if s is None:
        return None
    return {"dc": s.counters.data_cap.value, "rm": s.counters.roaming.value,
            "sp": _speed(s.speed.speed), "why": s.speed.reason, "be": s.speed.boost_ends_at,
            "st": s.status.value}


def _seen_from(d: Doc | None) -> Seen | None:
    if d is None:
        return None
    return Seen(PolicyCounters(CapState(d["dc"]), RoamingState(d["rm"])),
                SpeedView(_speed_d(d["sp"]), d["why"], _dt(d.get("be"))),
                SubscriberStatus(d["st"]))


def member_doc(m: Member) -> Doc:
    return {
        "supi": m.supi, "brand": m.brand, "net": m.home_network, "gpsi": m.gpsi,
        "st": m.status.value, "plan": terms_doc(m.plan) if m.plan else None,
        "ps": m.period_start, "pe": m.period_end, "cap": m.cap,
        "pu": m.pool_used, "pr": m.pool_reserved, "au": m.aftercap_used,
        "ar": m.aftercap_reserved, "ov": m.overage, "rep": m.reported,
        "bo": [{"o": b.offer_id, "ov": b.offer_version, "sp": _speed(b.speed),
                "vf": b.valid_from, "vt": b.valid_to} for b in m.boosts],
        "seen": _seen_doc(m.seen),
        "fs": _speed(m.fraud_speed) if m.fraud_speed is not None else None,
    }


def member_from(d: Doc) -> Member:
    """The member in ``d``. Documents written by earlier versions may hold an ``ops``
    list (idempotency keys of steps without a sequence number): it is ignored."""
    return Member(
        supi=d["supi"], brand=d["brand"], home_network=d["net"], gpsi=d.get("gpsi"),
        status=SubscriberStatus(d["st"]), plan=terms_from(d.get("plan")),
        period_start=_dt(d.get("ps")), period_end=_dt(d.get("pe")), cap=d.get("cap"),
        pool_used=d["pu"], pool_reserved=d["pr"], aftercap_used=d["au"],
        aftercap_reserved=d["ar"], overage=d["ov"], reported=d["rep"],
        boosts=tuple(Boost(b["o"], b["ov"], _speed_d(b["sp"]), _dtr(b["vf"]), _dtr(b["vt"]))
                     for b in d.get("bo", [])),
        seen=_seen_from(d.get("seen")),
        fraud_speed=_speed_d(d["fs"]) if d.get("fs") is not None else None,
    )


def bucket_doc(b: Bucket) -> Doc:
    return {"id": b.id, "k": b.kind, "o": b.offer_id, "ov": b.offer_version, "q": b.quota,
            "u": b.used, "r": b.reserved, "vf": b.valid_from, "vt": b.valid_to,
            "own": b.owner, "rg": list(b.rating_groups) if b.rating_groups else None,
            "z": list(b.zone) if b.zone else None, "zn": b.zone_name}


def bucket_from(d: Doc) -> Bucket:
    return Bucket(id=d["id"], kind=d["k"], offer_id=d["o"], offer_version=d["ov"],
                  quota=d["q"], used=d["u"], reserved=d["r"], valid_from=_dtr(d["vf"]),
                  valid_to=_dt(d.get("vt")), owner=d.get("own"),
                  rating_groups=tuple(d["rg"]) if d.get("rg") else None,
                  zone=tuple(d["z"]) if d.get("z") else None, zone_name=d.get("zn"))


def res_doc(r: Reservation) -> list[Any]:
    return [r.supi, r.session_id, r.rating_group, _portions(r.portions), r.expires_at]


def res_from(v: list[Any]) -> Reservation:
    return Reservation(v[0], v[1], v[2], _portions_d(v[3]), _dtr(v[4]))


def seq_doc(q: SeqRecord) -> list[Any]:
    return [q.supi, q.session_id, q.rating_group, q.seq, outcome_doc(q.outcome), q.at,
            q.closed_at]


def seq_from(v: list[Any]) -> SeqRecord:
    return SeqRecord(v[0], v[1], v[2], v[3], outcome_from(v[4]), _dtr(v[5]), _dt(v[6]))


def _top(w: Wallet) -> Doc:
    return {"kind": "group" if w.group_id else "solo",
            "supis": [m.supi for m in w.members],
            "brands": sorted({m.brand for m in w.members}),
            "gid": w.group_id, "fam": terms_doc(w.family) if w.family else None,
            "fps": w.family_period_start, "fpe": w.family_period_end, "owner": w.owner}


def wallet_doc(w: Wallet, due_res: datetime | None, due_life: datetime | None) -> Doc:
    return {
        "_id": w.id, "v": w.version, **_top(w),
        "members": [member_doc(m) for m in w.members],
        "buckets": [bucket_doc(b) for b in w.buckets],
        "res": {sub_key(r.supi, r.session_id, r.rating_group): res_doc(r)
                for r in w.reservations},
        "sq": {sub_key(q.supi, q.session_id, q.rating_group): seq_doc(q) for q in w.seqs},
        "due_res": due_res, "due_life": due_life,
        # The pending effects (``nf.effects``), empty from the start: the index on their
        # times is then an array index from the first wallet on. Made one later, by the
        # first pending entry, SecantusDB stalled every write for seconds.
        "fx": [],
    }


def wallet_from(d: Doc, pick: Pick | None = None) -> Wallet:
    """The wallet in ``d``. With ``pick``, only the reservations and sequence records
    whose key it accepts are decoded (a partial wallet, see ``nf.ledger.state``)."""
    res: dict[str, Any] = d.get("res") or {}
    sq: dict[str, Any] = d.get("sq") or {}
    return Wallet(
        id=d["_id"], version=d["v"],
        members=tuple(member_from(m) for m in d.get("members", [])),
        buckets=tuple(bucket_from(b) for b in d.get("buckets", [])),
        reservations=tuple(res_from(v) for k, v in res.items() if pick is None or pick(k)),
        seqs=tuple(seq_from(v) for k, v in sq.items() if pick is None or pick(k)),
        group_id=d.get("gid"), family=terms_from(d.get("fam")),
        family_period_start=_dt(d.get("fps")), family_period_end=_dt(d.get("fpe")),
        owner=d.get("owner"),
    )


def update_doc(old: Wallet, new: Wallet, due_res: datetime | None,
               due_life: datetime | None) -> Doc:
    """The MongoDB update (``$set``/``$unset``) that turns the stored ``old`` into ``new``,
    touching only what changed; apply it with the condition ``{_id, v: old.version}``.
    ``old`` may be partial; ``new`` must hold the same picked subset."""
    st: Doc = {"v": old.version + 1, "due_res": due_res, "due_life": due_life}
    un: Doc = {}
    a, b = _top(old), _top(new)
    for k, v in b.items():
        if a[k] != v:
            st[k] = v
    if [m.supi for m in old.members] != [m.supi for m in new.members]:
        st["members"] = [member_doc(m) for m in new.members]
    else:
        for i, (om, nm) in enumerate(zip(old.members, new.members, strict=True)):
            if om is nm:
                continue
            od, nd = member_doc(om), member_doc(nm)
            for k, v in nd.items():
                if od[k] != v:
                    st[f"members.{i}.{k}"] = v
    if [x.id for x in old.buckets] != [x.id for x in new.buckets]:
        st["buckets"] = [bucket_doc(x) for x in new.buckets]
    else:
        for i, (ob, nb) in enumerate(zip(old.buckets, new.buckets, strict=True)):
            if ob is not nb and ob != nb:
                st[f"buckets.{i}"] = bucket_doc(nb)
    _keyed_diff("res", old.reservations, new.reservations, res_doc, st, un)
    _keyed_diff("sq", old.seqs, new.seqs, seq_doc, st, un)
    return {"$set": st, "$unset": un} if un else {"$set": st}


def _keyed_diff(name: str, old: Iterable[_K], new: Iterable[_K],
                enc: Callable[[_K], list[Any]], st: Doc, un: Doc) -> None:
    """Into ``st``/``un``: the paths of sub-document ``name`` (keyed by ``sub_key``) that
    turn ``old`` into ``new``."""
    o = {sub_key(x.supi, x.session_id, x.rating_group): x for x in old}
    n = {sub_key(x.supi, x.session_id, x.rating_group): x for x in new}
    for k in o.keys() - n.keys():
        un[f"{name}.{k}"] = ""
    for k, x in n.items():
        if o.get(k) != x:
            st[f"{name}.{k}"] = enc(x)

