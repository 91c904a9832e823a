"""The reporting part of the NF: the EDRs' retention (TTL) index, the scheduled export
and the reports on the OAM port.

Scheduled export (``edr.export.schedule``: ``hourly`` or ``daily``; off by default): every
``poll_interval_s`` a worker looks at the marker document in ``edr_exports``. It holds the
end of what has been exported (``done_until``) and a lease. The process that takes the
lease (a conditional update: the lease must have lapsed) exports each closed unit (an hour
or a day, ``delay_s`` after it closed, so late records land first), advancing
``done_until`` after each; other processes find the lease held and do nothing, so several
NF processes never export the same unit twice at once, and one that dies mid-way leaves the
rest to whoever takes the lease next. The first run starts at the current unit (no
backfill: use ``nf edr export`` for history).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, OperationFailure
from quart import Blueprint

from nf import logs
from nf.catalog import CatalogHolder
from nf.errors import StoreUnavailable
from nf.reports.port import Wallets
from nf.runtime import Role, Runtime, Worker
from nf.store.mongo import Db, translate_errors

log = logging.getLogger("nf.reports")

COLLECTION = "edrs"
MARKERS = "edr_exports"
MARKER_ID = "scheduled"
TTL_INDEX = "time_ttl"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Units exported per round at most (a long outage catches up over several rounds).
MAX_UNITS_PER_ROUND = 48
_INDEX_OPTIONS_CONFLICT = (85, 86)


class ReportsPart:
    name = "reports"

    def __init__(self, rt: Runtime, *, ledger: Wallets | None = None,
                 catalog: CatalogHolder | None = None) -> None:
        self.rt = rt
        self.ledger = ledger
        self.catalog = catalog
        self.owner = f"{rt.settings.instance_id}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def blueprints(self, role: Role) -> list[Blueprint]:
        if role != "oam":
            return []
        from nf.reports.http import reports_blueprint

        return [reports_blueprint(self.rt, self.ledger, self.catalog)]

    async def ensure_indexes(self) -> None:
        await ensure_retention(self.rt.db, self.rt.settings.edr.retention_days)

    def workers(self) -> list[Worker]:
        return [] if self.rt.settings.edr.export.schedule == "off" else [self.run]

    async def run(self) -> None:
        cfg = self.rt.settings.edr.export
        while not self.rt.stopping.is_set():
            try:
                await self.export_round()
            except StoreUnavailable as e:
                log.warning("scheduled EDR export postponed",
                            extra={"fields": {"error": e.detail}})
            await self.rt.pause(cfg.poll_interval_s)

    # -- one round -------------------------------------------------------------------------

    def _unit(self) -> timedelta:
        return timedelta(days=1) if self.rt.settings.edr.export.schedule == "daily" \
            else timedelta(hours=1)

    def _floor(self, t: datetime) -> datetime:
        h = t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return h.replace(hour=0) if self.rt.settings.edr.export.schedule == "daily" else h

    async def export_round(self) -> int:
        """Export the closed units not yet exported, if this process gets the lease.
        Returns how many units it exported."""
        # Arrow is loaded only by a process that exports (not by every NF process).
        from nf.reports.export import Exporter

        cfg = self.rt.settings.edr.export
        assert cfg.dir is not None
        coll = self.rt.db[MARKERS]
        now = self.rt.clock.now()
        unit = self._unit()
        closed_until = self._floor(now - timedelta(seconds=cfg.delay_s))
        async with translate_errors("EDR export marker"):
            with contextlib.suppress(DuplicateKeyError):
                await coll.insert_one({"_id": MARKER_ID, "done_until": closed_until,
                                       "lease_until": _EPOCH, "owner": None})
            marker = await coll.find_one({"_id": MARKER_ID})
            if marker is None or _utc(marker["done_until"]) >= closed_until:
                return 0
            got = await coll.find_one_and_update(
                {"_id": MARKER_ID, "lease_until": {"$lt": now}},
                {"$set": {"owner": self.owner,
                          "lease_until": now + timedelta(seconds=cfg.lease_s)}})
        if got is None:
            return 0  # another process is exporting
        done = _utc(got["done_until"])
        self._check_retention(done, now)
        exporter = Exporter(self.rt.db, cfg.dir, cfg.format, batch_rows=cfg.batch_rows)
        n = 0
        try:
            while done < closed_until and n < MAX_UNITS_PER_ROUND:
                stats = await exporter.export(done, done + unit)
                done += unit
                n += 1
                async with translate_errors("EDR export marker"):
                    r = await coll.update_one(
                        {"_id": MARKER_ID, "owner": self.owner},
                        {"$set": {"done_until": done, "lease_until": self.rt.clock.now()
                                  + timedelta(seconds=cfg.lease_s)}})
                logs.log(log, logging.INFO, "EDRs exported", until=done.isoformat(),
                         edrs=stats.edrs, files=stats.files_written)
                if r.modified_count != 1:
                    log.warning("EDR export lease lost; another process continues")
                    return n
        finally:
            async with translate_errors("EDR export marker"):
                await coll.update_one({"_id": MARKER_ID, "owner": self.owner},
                                      {"$set": {"lease_until": _EPOCH}})
        return n

    def _check_retention(self, done: datetime, now: datetime) -> None:
        keep = timedelta(days=self.rt.settings.edr.retention_days)
        if now - done > keep - timedelta(days=1):
            log.error("EDR export is behind: records expire before they are exported",
                      extra={"fields": {"exported_until": done.isoformat(),
                                        "retention_days": keep.days}})


def _utc(v: datetime) -> datetime:
    return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


async def ensure_retention(db: Db, retention_days: int) -> None:
    """The TTL index on ``edrs.time`` (``edr.retention_days``); changed in place when the
    setting changes. It also serves the export's time-range reads."""
    coll = db[COLLECTION]
    seconds = retention_days * 86_400
    async with translate_errors("EDR retention index"):
        try:
            await coll.create_index([("time", ASCENDING)], name=TTL_INDEX,
                                    expireAfterSeconds=seconds)
        except OperationFailure as e:
            if e.code not in _INDEX_OPTIONS_CONFLICT:
                raise
            await db.command({"collMod": COLLECTION, "index": {
                "name": TTL_INDEX, "expireAfterSeconds": seconds}})
