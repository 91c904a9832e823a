"""What the ledger answers without writing: a subscriber's view, balance and raw wallet,
and the CHF's notes of its sessions. Functions over the wallet repository."""

from __future__ import annotations

from datetime import datetime

from nf.catalog import CatalogHolder
from nf.ledger import core
from nf.ledger.codec import Doc, wallet_from
from nf.ledger.port import BalanceView, BucketView, CapAction, SubscriberView
from nf.ledger.repo import NOTES, WalletRepo
from nf.ledger.state import Member, Wallet
from nf.ledger.steps import note_of
from nf.store.mongo import translate_errors


def _nothing(_k: str) -> bool:
    return False


async def read(repo: WalletRepo, supi: str, now: datetime, full: bool = False
               ) -> tuple[Wallet, Member] | None:
    """The member's wallet as of ``now``; without ``full``, without the reservations and
    sequence records (the views do not depend on them)."""
    doc = await repo.load_waiting(supi, now)
    if doc is None:
        return None
    w = core.advance(wallet_from(doc, None if full else _nothing), now, repo.retention)
    m = w.member(supi)
    return (w, m) if m is not None else None


def view(repo: WalletRepo, catalog: CatalogHolder, w: Wallet, m: Member, now: datetime
         ) -> SubscriberView:
    terms = core.terms_of(w, m)
    net = repo.settings.network(m.home_network)
    brand = catalog.current.brand(m.brand)
    return SubscriberView(
        supi=m.supi, gpsi=m.gpsi, brand=m.brand, home_network=m.home_network,
        home_plmn=net.plmn_ids[0] if net else "", status=m.status, group_id=w.group_id,
        counters=core.counters(w, m, now), speed=core.speed(w, m, now),
        cap_action=terms.cap_action if terms else CapAction.BLOCK,
        roaming_allowed_without_pass=bool(terms and terms.roaming_allowed),
        block_final_unit_action=brand.block_final_unit_action if brand else "TERMINATE",
        topup_url=brand.topup_url if brand else None)


async def subscriber(repo: WalletRepo, catalog: CatalogHolder, supi: str, now: datetime
                     ) -> SubscriberView | None:
    got = await read(repo, supi, now)
    return None if got is None else view(repo, catalog, got[0], got[1], now)


async def supi_of_gpsi(repo: WalletRepo, gpsi: str) -> str | None:
    """The SUPI of the member whose GPSI is ``gpsi`` (a group's wallet holds all its
    members); None if none has it."""
    async with translate_errors("ledger read"):
        d = await repo.col.find_one({"members.gpsi": gpsi},
                                    {"members.supi": 1, "members.gpsi": 1})
    for m in (d or {}).get("members", []):
        if m.get("gpsi") == gpsi:
            return str(m["supi"])
    return None


async def balance(repo: WalletRepo, catalog: CatalogHolder, supi: str, now: datetime
                  ) -> BalanceView | None:
    got = await read(repo, supi, now)
    if got is None:
        return None
    w, m = got
    views = tuple(
        BucketView(bucket_id=b.id, kind=b.kind, offer_id=b.offer_id,
                   offer_version=b.offer_version, quota_bytes=b.quota,
                   used_bytes=b.used, reserved_bytes=b.reserved, valid_from=b.valid_from,
                   valid_to=b.valid_to, rating_groups=b.rating_groups, zone=b.zone)
        for b in w.buckets
        if (b.owner == supi or b.kind == "pool") and b.valid_at(now))
    return BalanceView(subscriber=view(repo, catalog, w, m, now), buckets=views)


async def read_note(repo: WalletRepo, supi: str, session_id: str, now: datetime, *,
                    fresh: bool = True) -> Doc | None:
    doc = None if fresh else repo.copies.cached(supi)
    if doc is None:
        doc = await repo.load_waiting(supi, now)
    n = note_of(doc, session_id) if doc is not None else None
    return dict(n) if n is not None else None


async def session_notes(repo: WalletRepo, supi: str, now: datetime) -> dict[str, Doc]:
    """Every note of ``supi``'s charging sessions on its wallet, by session id (for care:
    the note, not the session document, sees each update). One read."""
    doc = await repo.load_waiting(supi, now)
    notes = (doc.get(NOTES) or {}) if doc is not None else {}
    return {k: dict(n) for k, n in notes.items() if isinstance(n, dict) and n.get("s") == supi}
