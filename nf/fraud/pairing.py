"""Which charging session and policy association are one PDU session. Pure.

The charging session and the policy association the SMF holds for one PDU session are
paired when the second of them is first seen (``Sess.peer``, kept from then on): same PDU
session id and host network first, then the same PDU session id (one side first seen
after the PDU session moved), then a side that does not say its PDU session id; the one
in the same serving PLMN, then the oldest, first. A PDU session is in one place at a
time, where its side that reported last says it is, so a serving PLMN change reported by
the PCF before the CHF (or the reverse) moves the PDU session instead of adding a place.
When one side of a PDU session is released, the other side's release is awaited for the
orphan grace period (the PDU session is *ending*: it is no longer anywhere), so a
subscriber leaving network A for network B is not in two places while the last of A's
releases is on its way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from nf.fraud.state import Sess


def pdu_sessions(sessions: tuple[Sess, ...]) -> list[tuple[Sess, ...]]:
    """The sessions grouped by PDU session (a pair of peers, or a session alone), oldest
    first. Every session is in exactly one group."""
    if len(sessions) < 2:
        return [(x,) for x in sessions]
    by_key = {x.key: x for x in sessions}
    done: set[str] = set()
    groups: list[tuple[Sess, ...]] = []
    for x in sorted(sessions, key=lambda x: (x.opened_at, x.key)):
        if x.key in done:
            continue
        peer = by_key.get(x.peer) if x.peer is not None else None
        if peer is not None and peer.peer == x.key and peer.key not in done:
            groups.append((x, peer))
            done.add(peer.key)
        else:
            groups.append((x,))
        done.add(x.key)
    return groups


def peer_rank(mine: Sess, other: Sess) -> tuple[int, bool, datetime, str] | None:
    """How well ``other`` fits as the other side of ``mine``'s PDU session (lower is
    better; None: it cannot be)."""
    if mine.pdu_id is not None and other.pdu_id is not None:
        if mine.pdu_id != other.pdu_id:
            return None
        level = 0 if mine.pdu_network == other.pdu_network else 1
    else:
        level = 2
    return level, other.serving_plmn != mine.serving_plmn, other.opened_at, other.key


def link(sessions: tuple[Sess, ...], mine: Sess, depth: int = 0) -> tuple[Sess, ...]:
    """Pair ``mine`` (one of ``sessions``, open) with the other side of its PDU session,
    if it has none yet and one is there. A side already paired is taken over when
    ``mine`` fits it strictly better than its peer does (same PDU session and place
    against another place: two PDU sessions with one id whose sides interleaved); its
    old peer is then paired again if it can be."""
    if mine.peer is not None and any(x.key == mine.peer and x.peer == mine.key
                                     for x in sessions):
        return sessions
    live = {x.key: x for x in sessions}
    ranked = []
    for x in sessions:
        if x.kind == mine.kind or x.closed_at is not None:
            continue
        r = peer_rank(mine, x)
        if r is None:
            continue
        old = live.get(x.peer) if x.peer is not None else None
        if old is not None and old.peer == x.key:
            now_r = peer_rank(x, old)
            if now_r is not None and now_r[:2] <= r[:2]:
                continue  # well paired already
        ranked.append((r, x.key, old.key if old is not None and old.peer == x.key
                       else None))
    if not ranked:
        return sessions
    _, peer, left = min(ranked)
    out = tuple(replace(x, peer=peer) if x.key == mine.key else
                replace(x, peer=mine.key) if x.key == peer else
                replace(x, peer=None) if x.key == left else x for x in sessions)
    if left is None or depth >= len(sessions):  # each take-over improves a pair: bounded
        return out
    return link(out, next(x for x in out if x.key == left), depth + 1)


def peer_of(sessions: tuple[Sess, ...], mine: Sess) -> Sess | None:
    got = next((x for x in sessions if x.key == mine.peer), None) \
        if mine.peer is not None else None
    return got if got is not None and got.peer == mine.key else None


def ending(group: tuple[Sess, ...]) -> bool:
    return any(x.closed_at is not None for x in group)
