"""What the services run with: the sections of the CHF, the PCF, the ledger and its
effects, EDRs, notifications towards peers, the care API and console, SMS and notices to
subscribers.
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


class SmsBrand(Frozen):
    """A brand's sender identity on the SMSC (TON 5 = alphanumeric, 1 = international)."""

    source_addr: str = Field(pattern=r"^[0-9A-Za-z .+-]{1,20}$")
    source_ton: int = Field(5, ge=0, le=6)
    source_npi: int = Field(0, ge=0, le=18)


class SmsSettings(Frozen):
    """SMPP 3.4 towards the SMSC (one transceiver bind per NF process)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(2775, ge=1, le=65535)
    system_id: str = Field("", max_length=15)
    password: str = Field("", max_length=8)
    system_type: str = Field("", max_length=12)
    brands: dict[str, SmsBrand] = Field(default_factory=dict)
    dest_ton: int = Field(1, ge=0, le=6)
    dest_npi: int = Field(1, ge=0, le=18)
    throughput_per_s: float = Field(100.0, gt=0, le=100_000)
    window: int = Field(10, ge=1, le=1000)  # submit_sm awaiting their response
    enquire_link_interval_s: float = Field(30.0, ge=1, le=3600)
    response_timeout_s: float = Field(10.0, ge=1, le=300)
    reconnect_min_s: float = Field(1.0, gt=0, le=600)
    reconnect_max_increases: int = Field(6, ge=0, le=20)  # doubles up to min * 2**n
    throttle_backoff_s: float = Field(1.0, gt=0, le=600)  # after ESME_RTHROTTLED/RMSGQFUL
    max_attempts: int = Field(10, ge=1, le=1000)
    validity_s: int = Field(86_400, ge=60, le=7 * 86_400)  # of each submit_sm


class BrandNotices(Frozen):
    time_zone: str = "UTC"  # IANA name; dates in texts and quiet hours use it
    # Non-urgent notices falling in [quiet_start, quiet_end) local time wait for the end.
    quiet_start: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    quiet_end: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    topup: str | None = Field(None, max_length=100)  # short code or URL for {topup}
    sms: bool = True
    webhook_url: str | None = Field(None, pattern=r"^https?://\S+$", max_length=500)
    webhook_secret: str | None = Field(None, min_length=16, max_length=200)
    webhook_enabled: bool = False

    @model_validator(mode="after")
    def _checks(self) -> BrandNotices:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.time_zone!r}") from None
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end go together")
        if self.webhook_enabled and not (self.webhook_url and self.webhook_secret):
            raise ValueError("webhook_enabled needs webhook_url and webhook_secret")
        return self


class NoticeSettings(Frozen):
    """Notices to subscribers (usage, cap, purchases, expiry): per-brand rules, outbox."""

    enabled: bool = True
    brands: dict[str, BrandNotices] = Field(default_factory=dict)
    expiry_lead_s: float = Field(86_400.0, ge=0, le=30 * 86_400)
    poll_interval_s: float = Field(1.0, gt=0, le=60)
    lease_s: float = Field(30.0, gt=0, le=3600)
    max_pending: int = Field(1_000_000, ge=10, le=100_000_000)
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(8, ge=1, le=100)
    webhook_backoff_s: float = Field(1.0, gt=0, le=600)
    webhook_max_backoff_s: float = Field(600.0, gt=0, le=86_400)


class ConsoleSettings(Frozen):
    """The care console on the OAM port (``/console/``)."""

    enabled: bool = True
    # Signs the session cookie: a key reference as in ``api_keys`` without ``sha256:``
    # (``env:NAME``, ``file:/path`` or the secret itself). Unset: a random secret per
    # process, so sessions end at a restart and need one OAM worker.
    session_secret: str | None = None
    session_ttl_s: int = Field(28_800, ge=60, le=7 * 86_400)
    # A session with no console request for this long ends (checked on each request).
    idle_timeout_s: int = Field(1_800, ge=60, le=7 * 86_400)
    recent_max: int = Field(10, ge=0, le=50)
    # The subscriber page's "Recent events": the newest this many EDRs, and a count of the
    # older ones.
    edr_timeline_max: int = Field(20, ge=1, le=500)
    # Failed sign-ins allowed per presented key (its key id) in a window; past that, a
    # sign-in with that key answers 429 (with Retry-After) for ``sign_in_lockout_s``.
    sign_in_max_failures: int = Field(10, ge=1, le=10_000)
    sign_in_window_s: int = Field(60, ge=1, le=86_400)
    sign_in_lockout_s: int = Field(60, ge=1, le=86_400)
    # A client address is slowed, never locked: after a failure its sign-ins wait
    # ``sign_in_delay_base_s``, doubling with each further failure up to
    # ``sign_in_delay_max_s``, forgotten ``sign_in_window_s`` after its last failure. At
    # most ``sign_in_waiting_max`` sign-ins wait at once (past that: 429 at once).
    sign_in_delay_base_s: float = Field(0.25, gt=0, le=60)
    sign_in_delay_max_s: float = Field(10.0, gt=0, le=600)
    sign_in_waiting_max: int = Field(32, ge=1, le=10_000)
    # Counted per process, for at most this many key ids and as many addresses.
    sign_in_tracked_max: int = Field(10_000, ge=10, le=10_000_000)
    # Behind a reverse proxy: the header carrying the client's address (its first entry),
    # e.g. "X-Forwarded-For". Unset: the peer address of the connection (behind a proxy,
    # the proxy's: every agent then shares one address and its sign-in delay).
    client_address_header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")

    @model_validator(mode="after")
    def _delays(self) -> ConsoleSettings:
        if self.sign_in_delay_max_s < self.sign_in_delay_base_s:
            raise ValueError("sign_in_delay_max_s must be at least sign_in_delay_base_s")
        return self
