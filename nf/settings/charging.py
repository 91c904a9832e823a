"""The sections of the money and policy path: CHF, PCF, ledger, effects, EDRs,
notifications towards peers and the care API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from nf.settings.base import Frozen


class ChfSettings(Frozen):
    # Retransmission answers cached per session (bounded).
    reservation_grace_s: int = Field(60, ge=0, le=3600)
    supervision_sweep_interval_s: float = Field(5.0, gt=0, le=3600)
    max_rating_groups_per_request: int = Field(32, ge=1, le=1000)
    # Open charging sessions each process keeps a copy of, so a warm update skips the
    # session read (0: always read).
    session_cache_size: int = Field(10_000, ge=0, le=10_000_000)


class PcfSettings(Frozen):
    default_5qi: int = Field(9, ge=1, le=255)
    default_arp_priority: int = Field(8, ge=1, le=15)


class NotifySettings(Frozen):
    outbox_max_pending: int = Field(100_000, ge=10, le=10_000_000)
    max_attempts: int = Field(8, ge=1, le=100)
    initial_backoff_s: float = Field(0.2, gt=0, le=60)
    max_backoff_s: float = Field(30.0, gt=0, le=3600)
    request_timeout_s: float = Field(2.0, gt=0, le=60)
    poll_interval_s: float = Field(0.5, gt=0, le=60)
    lease_s: float = Field(10.0, gt=0, le=600)
    concurrency: int = Field(32, ge=1, le=1000)


class EdrExportSettings(Frozen):
    """The scheduled export of EDRs to Parquet/CSV files (``nf.reports``); off by default."""

    # "hourly" / "daily": export each closed hour / day into ``dir``.
    schedule: Literal["off", "hourly", "daily"] = "off"
    dir: Path | None = None
    format: Literal["parquet", "csv"] = "parquet"
    # Wait this long after an hour closes before exporting it (late EDRs still land).
    delay_s: float = Field(300.0, ge=0, le=86_400)
    # Rows buffered per table and brand before they are written out (memory bound).
    batch_rows: int = Field(50_000, ge=100, le=10_000_000)
    # How long one process holds the export marker; another takes over after it lapses.
    lease_s: float = Field(900.0, ge=10, le=86_400)
    poll_interval_s: float = Field(60.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _dir_when_on(self) -> EdrExportSettings:
        if self.schedule != "off" and self.dir is None:
            raise ValueError("a scheduled export needs dir")
        return self


class EdrSettings(Frozen):
    buffer_max: int = Field(50_000, ge=10, le=10_000_000)
    batch_max: int = Field(500, ge=1, le=100_000)
    # A request waits at most this long for its EDR to be stored (then 503).
    wait_timeout_s: float = Field(10.0, gt=0, le=300)
    # EDRs are deleted from MongoDB this long after their time (TTL index on ``time``);
    # export them before (``nf edr export`` or ``export.schedule``).
    retention_days: int = Field(90, ge=1, le=3660)
    export: EdrExportSettings = EdrExportSettings()


class LedgerSettings(Frozen):
    # How often the sweepers look for expired reservations and for renewals/expiries.
    reservation_sweep_interval_s: float = Field(5.0, gt=0, le=3600)
    renewal_sweep_interval_s: float = Field(30.0, gt=0, le=86_400)
    sweep_batch: int = Field(500, ge=1, le=100_000)
    # A closed charging session's sequence records (the idempotency memory of its steps)
    # are kept this long: a retry of one of its steps within it is answered, not charged.
    seq_retention_s: float = Field(300.0, ge=0, le=86_400)
    # Optimistic write attempts before answering NF_CONGESTION.
    max_write_attempts: int = Field(200, ge=1, le=10_000)
    # Charging steps ready at once are written together (one bulk write, nf.store.batch):
    # at most this many per batch, this many batches in flight, this many waiting (past
    # it, NF_CONGESTION).
    write_batch_max: int = Field(64, ge=1, le=1_000)
    write_batches_in_flight: int = Field(2, ge=1, le=64)
    write_queue_max: int = Field(10_000, ge=1, le=1_000_000)
    # A CHF session note on a wallet whose supervision deadline passed this long ago
    # belongs to no live session (supervision closes a session at its deadline): the
    # wallet's next note write or the reservation sweeper drops it (``nf.ledger.notes``).
    note_grace_s: float = Field(3600.0, ge=60, le=30 * 86_400)

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: Any) -> Any:
        """Configurations of earlier versions still load: ``op_retention_s`` is
        ``seq_retention_s``; ``op_ring_size`` (keys of steps without a sequence number,
        which no longer exist) is ignored."""
        if isinstance(data, dict) and ("op_retention_s" in data or "op_ring_size" in data):
            data = {k: v for k, v in data.items() if k != "op_ring_size"}
            if "op_retention_s" in data:
                data.setdefault("seq_retention_s", data.pop("op_retention_s"))
        return data


class EffectsSettings(Frozen):
    """Pending effects of ledger and charging writes (counter changes, EDRs): written in
    the same conditional update as the state they come from, delivered at once by this
    process, and picked up by any process's sweeper when left behind (a crash)."""

    # Effects handed to this process's delivery worker and not yet delivered (past it,
    # they stay pending in the database and the sweeper delivers them).
    queue_max: int = Field(20_000, ge=10, le=10_000_000)
    # Effects delivered together (one listener call, one acknowledgement write).
    batch_max: int = Field(200, ge=1, le=100_000)
    # Batches delivered at once: a batch never waits for the one before it to finish,
    # except behind effects of the same document (those keep their order).
    batches_in_flight: int = Field(4, ge=1, le=64)
    # EDRs pending on the documents that made them wait this long for more before they
    # are stored (fewer, larger inserts and acknowledgements; nobody waits for them).
    edr_linger_s: float = Field(0.02, ge=0.0, le=1.0)
    # A pending effect older than this is taken over by the sweeper.
    sweep_grace_s: float = Field(3.0, ge=0.1, le=3600)
    sweep_interval_s: float = Field(1.0, gt=0, le=3600)
    sweep_batch: int = Field(200, ge=1, le=100_000)
    # Off only for tests that need effects left to the sweeper (crash simulation).
    immediate: bool = True
    # Pending entries one wallet document may hold. They pile up only while delivery
    # fails; past this, the wallet's writes are refused with NF_CONGESTION (the peer
    # retries) rather than growing the document or dropping a record.
    max_pending_per_doc: int = Field(200, ge=10, le=100_000)


class CareSettings(Frozen):
    # How long an ``Idempotency-Key`` of the care API is remembered (at least a day).
    idempotency_retention_s: float = Field(172_800.0, ge=86_400, le=90 * 86_400)
