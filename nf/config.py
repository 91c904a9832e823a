"""Validated, frozen configuration: a YAML file plus ``NF_*`` environment variables.

Parsed once at the edge (``Settings.load``) and passed down. Units are in the names.
Nested keys can be set from the environment with ``__``: ``NF_SERVER__SBI_PORT=9000``.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from nf.errors import ConfigError
from nf.fraud.config import FraudSettings


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Frozen):
    sbi_host: str = "127.0.0.1"
    sbi_port: int = Field(8000, ge=0, le=65535)
    oam_host: str = "127.0.0.1"
    oam_port: int = Field(8080, ge=0, le=65535)
    server: Literal["granian", "hypercorn"] = "granian"
    workers: int = Field(1, ge=1, le=64)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # mTLS: with TLS on, require a client certificate signed by this CA bundle.
    tls_client_ca_file: Path | None = None
    max_body_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    max_inflight_requests: int = Field(2_000, ge=1, le=1_000_000)
    # Of those, how many are worked on at once (the rest wait their turn, in order): keeps
    # the event loop's turns short so that throttles and other background work are not
    # queued behind every request of the process. 0: all at once.
    max_active_requests: int = Field(16, ge=0, le=1_000_000)
    # The hot SBI operations (charging data create/update/release, SM policy create/
    # update/delete) answered before the framework (nf.sbi.direct); off: by Quart alone.
    direct_routes: bool = True
    h2_max_concurrent_streams: int = Field(1_000, ge=10, le=100_000)
    shutdown_grace_s: float = Field(10.0, ge=0.0, le=600.0)
    # A request body must arrive completely within this time (slow-sender protection).
    body_timeout_s: float = Field(10.0, gt=0.0, le=600.0)
    # An idle HTTP/2 connection is kept this long (SMFs keep theirs for hours; 0 = forever
    # for Hypercorn). Granian pings idle connections every ``h2_keep_alive_interval_s``.
    idle_timeout_s: float = Field(3600.0, ge=0.0, le=86_400.0)
    h2_keep_alive_interval_s: float = Field(30.0, gt=0.0, le=3600.0)
    # The public base of this NF's SBI, used in Location headers.
    api_root: str | None = None
    # Granian's event loop ("auto": uvloop when installed, as the NF's dependencies have it).
    granian_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    # OAM /readyz also requires the SBI port to accept connections. ``nf serve`` turns it
    # on (it runs both servers); an app built alone (tests) has no SBI listener to check.
    readyz_checks_sbi: bool = False
    # Also accept HTTP/1.1 on the SBI port (besides h2c with prior knowledge, and ALPN
    # ``http/1.1`` next to ``h2`` under TLS), for clients generated from the OpenAPI
    # documents that speak HTTP/1.1. TS 29.500 requires HTTP/2, so production keeps it off;
    # then an HTTP/1.1 request gets 505 with a ProblemDetails that says how to connect.
    sbi_http1: bool = False
    # Set by ``nf serve`` in the processes serving one host network's own SBI listener
    # (``networks[].sbi_port``): the network id. Not for the configuration file.
    listener_network: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None


class HostNetwork(_Frozen):
    """One of the host mobile networks the MVNO rides on, with its charging settings."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    name: str
    # MCC+MNC, 5 or 6 digits.
    plmn_ids: list[Annotated[str, Field(pattern=r"^[0-9]{5,6}$")]] = Field(min_length=1)
    default_grant_bytes: int = Field(10 * 1024 * 1024, ge=1, le=10 * 1024**3)
    validity_time_s: int = Field(3600, ge=1, le=86_400)
    volume_quota_threshold_pct: int = Field(20, ge=0, le=100)
    quota_holding_time_s: int = Field(300, ge=0, le=86_400)
    # Where this network's SMFs/PCFs may have notifications sent (notifyUri,
    # notificationUri, notifUri): IP networks for address literals, DNS suffixes for names.
    # Both unset: any target (the NF logs a warning at start).
    notify_cidrs: list[Annotated[IPv4Network | IPv6Network,
                                 PlainSerializer(str, return_type=str)]] | None = None
    notify_fqdn_suffixes: list[Annotated[str, Field(min_length=1, max_length=253)]] | None \
        = None
    # NF instance ids (the token's ``sub``) of this network's consumers, for access tokens
    # that carry no ``consumerPlmnId``.
    consumer_nf_instance_ids: list[str] = Field(default_factory=list)
    # This network's own SBI listener (mTLS): a port on which only client certificates
    # signed by ``tls_client_ca_file`` are accepted, and every request is this network's
    # (``nf.security.caller``). Needs server TLS; unset: the network uses the shared port.
    sbi_port: int | None = Field(None, ge=1, le=65535)
    sbi_host: str | None = None  # default: server.sbi_host
    tls_client_ca_file: Path | None = None
    sbi_workers: int | None = Field(None, ge=1, le=64)  # default: server.workers

    @model_validator(mode="after")
    def _listener(self) -> HostNetwork:
        own = ("sbi_host", "tls_client_ca_file", "sbi_workers")
        if self.sbi_port is None:
            given = [k for k in own if getattr(self, k) is not None]
            if given:
                raise ValueError(f"host network {self.id}: {', '.join(given)} only apply "
                                 "to its own SBI listener; set sbi_port too")
        elif self.tls_client_ca_file is None:
            raise ValueError(f"host network {self.id}: its own SBI listener (sbi_port) "
                             "needs tls_client_ca_file, the CA bundle that signs its "
                             "SMFs' client certificates")
        return self


class ChfSettings(_Frozen):
    # Retransmission answers cached per session (bounded).
    reservation_grace_s: int = Field(60, ge=0, le=3600)
    supervision_sweep_interval_s: float = Field(5.0, gt=0, le=3600)
    max_rating_groups_per_request: int = Field(32, ge=1, le=1000)
    # Open charging sessions each process keeps a copy of, so a warm update skips the
    # session read (0: always read).
    session_cache_size: int = Field(10_000, ge=0, le=10_000_000)


class PcfSettings(_Frozen):
    default_5qi: int = Field(9, ge=1, le=255)
    default_arp_priority: int = Field(8, ge=1, le=15)


class NotifySettings(_Frozen):
    outbox_max_pending: int = Field(100_000, ge=10, le=10_000_000)
    max_attempts: int = Field(8, ge=1, le=100)
    initial_backoff_s: float = Field(0.2, gt=0, le=60)
    max_backoff_s: float = Field(30.0, gt=0, le=3600)
    request_timeout_s: float = Field(2.0, gt=0, le=60)
    poll_interval_s: float = Field(0.5, gt=0, le=60)
    lease_s: float = Field(10.0, gt=0, le=600)
    concurrency: int = Field(32, ge=1, le=1000)


class EdrExportSettings(_Frozen):
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


class EdrSettings(_Frozen):
    buffer_max: int = Field(50_000, ge=10, le=10_000_000)
    batch_max: int = Field(500, ge=1, le=100_000)
    # A request waits at most this long for its EDR to be stored (then 503).
    wait_timeout_s: float = Field(10.0, gt=0, le=300)
    # EDRs are deleted from MongoDB this long after their time (TTL index on ``time``);
    # export them before (``nf edr export`` or ``export.schedule``).
    retention_days: int = Field(90, ge=1, le=3660)
    export: EdrExportSettings = EdrExportSettings()


class LedgerSettings(_Frozen):
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


class EffectsSettings(_Frozen):
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


class CareSettings(_Frozen):
    # How long an ``Idempotency-Key`` of the care API is remembered (at least a day).
    idempotency_retention_s: float = Field(172_800.0, ge=86_400, le=90 * 86_400)


class SupiRange(_Frozen):
    start: str | None = Field(None, pattern=r"^[0-9]+$")
    end: str | None = Field(None, pattern=r"^[0-9]+$")
    pattern: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> SupiRange:
        if (self.start is None) != (self.end is None) or \
                (self.pattern is None) == (self.start is None):
            raise ValueError("a SUPI range is either start and end, or a pattern")
        return self


class NrfSettings(_Frozen):
    """Registration with an NRF (TS 29.510). Off while ``uri`` is unset."""

    uri: str | None = Field(None, pattern=r"^https?://")
    # Addresses peers reach this NF's SBI at, as put in the NF profiles (defaults: the
    # SBI host when it is an address, and the SBI port).
    fqdn: str | None = None
    ipv4_addresses: list[str] = Field(default_factory=list)
    port: int | None = Field(None, ge=1, le=65535)
    # Served subscribers, put in chfInfo/pcfInfo: SUPI ranges (start/end or pattern).
    supi_ranges: list[SupiRange] = Field(default_factory=list)
    dnns: list[str] = Field(default_factory=list)
    # Heartbeat asked for; the NRF's answer wins.
    heartbeat_s: int = Field(30, ge=1, le=3600)
    # How often each registered profile is read back (GET nf-instances/{id}); a 404
    # registers it again, for NRFs that lost it yet answer heartbeats with 2xx. 0: never.
    profile_check_s: float = Field(60.0, ge=0, le=86_400)
    capacity: int = Field(100, ge=0, le=65535)
    priority: int = Field(1, ge=0, le=65535)
    request_timeout_s: float = Field(3.0, gt=0, le=60)
    # HTTP/2 (h2c prior knowledge, or ALPN h2 over TLS) as TS 29.500 requires; false:
    # HTTP/1.1, for an NRF whose HTTP/2 server is unreliable.
    http2: bool = True
    initial_backoff_s: float = Field(1.0, gt=0, le=60)
    max_backoff_s: float = Field(60.0, gt=0, le=3600)


class OAuth2Settings(_Frozen):
    """OAuth2 access tokens on the SBI (TS 33.501 13.4.1, TS 29.510 AccessTokenClaims)."""

    required: bool = False
    # Expected ``iss``: the NRF's NF instance id (or the issuer's URL).
    issuer: str | None = None
    # The issuer's verification keys: a JWKS file, or a URL fetched and refreshed.
    jwks_file: Path | None = None
    jwks_uri: str | None = Field(None, pattern=r"^https?://")
    jwks_refresh_s: float = Field(300.0, ge=1, le=86_400)
    algorithms: list[str] = Field(default_factory=lambda: ["ES256", "RS256", "PS256",
                                                            "EdDSA"])
    # Audiences accepted besides this NF's instance ids and NF types (CHF, PCF).
    extra_audiences: list[str] = Field(default_factory=list)
    leeway_s: int = Field(30, ge=0, le=600)
    # Verified tokens remembered until they expire, so a reused token is checked once.
    cache_size: int = Field(10_000, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _complete(self) -> OAuth2Settings:
        if self.required:
            if not self.issuer:
                raise ValueError("oauth2.required needs oauth2.issuer")
            if (self.jwks_file is None) == (self.jwks_uri is None):
                raise ValueError("oauth2.required needs exactly one of jwks_file, jwks_uri")
        return self

class SmsBrand(_Frozen):
    """A brand's sender identity on the SMSC (TON 5 = alphanumeric, 1 = international)."""

    source_addr: str = Field(pattern=r"^[0-9A-Za-z .+-]{1,20}$")
    source_ton: int = Field(5, ge=0, le=6)
    source_npi: int = Field(0, ge=0, le=18)


class SmsSettings(_Frozen):
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


class BrandNotices(_Frozen):
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


class NoticeSettings(_Frozen):
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

class ConsoleSettings(_Frozen):
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


class DiameterNetwork(_Frozen):
    """One host network's Diameter side: the realms its peers (PGW, PCRF, DRA) speak from,
    and the Origin-Hosts allowed to connect. A peer not listed is refused at CER (3010)."""

    realms: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(min_length=1)
    peers: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(min_length=1)


class DiameterSettings(_Frozen):
    """The Diameter listener (Gy, Gx, Sy for 4G host networks), in a process of its own
    under ``nf serve`` (``nf.diameter.process``)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(3868, ge=0, le=65535)
    # TLS before CER (RFC 6733 §13, port 5658 by convention): both or neither.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    origin_host: str = Field("nf.mvno.invalid", min_length=1, max_length=253)
    origin_realm: str = Field("mvno.invalid", min_length=1, max_length=253)
    product_name: str = Field("mvno-nf", min_length=1, max_length=64)
    # Host network id -> its realms and allowed peers (ids of ``networks``).
    networks: dict[str, DiameterNetwork] = Field(default_factory=dict)
    max_connections: int = Field(64, ge=1, le=10_000)
    max_message_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    # Requests of one connection being handled at once; past it: 3004 DIAMETER_TOO_BUSY.
    max_inflight_per_connection: int = Field(256, ge=1, le=100_000)
    # Answers kept for retransmissions, by (Origin-Host, End-to-End-Id).
    answer_cache_size: int = Field(50_000, ge=0, le=10_000_000)
    # RFC 3539 Tw: a DWR after this long without traffic; the connection closes after
    # twice this without an answer.
    watchdog_s: float = Field(30.0, ge=1.0, le=3600.0)
    # Wait this long for a CER after the connection opens.
    cer_timeout_s: float = Field(10.0, gt=0, le=600)
    # On shutdown: how long to wait for the peers' DPA.
    dpa_timeout_s: float = Field(2.0, gt=0, le=60)

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None


class Settings(BaseSettings):
    """Everything the NF needs to start. Frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix="NF_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    instance_id: str = "nf-1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mongodb_uri: str = "mongodb://127.0.0.1:27017"
    mongodb_database: str = "nf"
    mongodb_timeout_ms: int = Field(5_000, ge=100, le=120_000)
    mongodb_max_pool_size: int = Field(100, ge=1, le=10_000)
    # Connections opened ahead of traffic, so the first requests do not pay for them.
    mongodb_min_pool_size: int = Field(4, ge=0, le=10_000)
    # A database command slower than this is logged (WARNING, with its filter's shape).
    mongodb_slow_op_ms: float = Field(250.0, ge=1.0, le=600_000.0)
    # Watch every database command (``nf.store.opwatch``): its latency by command and
    # collection on /metrics and the slow-operation log. Off saves a few % of CPU per
    # request and loses both.
    mongodb_op_watch: bool = True
    # How long a process may wait for the database at start (index checks, the warm-up):
    # after a restart the embedded database's first operation on a large collection takes
    # seconds per 100,000 documents. Waited for with a progress line every 10 s.
    mongodb_startup_timeout_s: float = Field(900.0, ge=1.0, le=86_400.0)
    # Write nothing to every collection once at start (``nf.store.mongo.warm_up``), so the
    # embedded database's slow first write per collection is paid before traffic. Unset:
    # only where the server is the embedded database (SecantusDB; MongoDB needs none).
    mongodb_warm_up: bool | None = None
    catalog_dir: Path | None = None
    # Care / provisioning API keys: key -> brand id, or "*" for the operator-wide admin.
    # The key may be given as "sha256:<hex digest>", "env:VAR" or "file:/path" instead of
    # in plain text (nf.security.apikeys).
    api_keys: dict[str, str] = Field(default_factory=dict)
    care: CareSettings = CareSettings()
    console: ConsoleSettings = ConsoleSettings()
    server: ServerSettings = ServerSettings()
    networks: list[HostNetwork] = Field(default_factory=list)
    chf: ChfSettings = ChfSettings()
    pcf: PcfSettings = PcfSettings()
    notify: NotifySettings = NotifySettings()
    edr: EdrSettings = EdrSettings()
    ledger: LedgerSettings = LedgerSettings()
    effects: EffectsSettings = EffectsSettings()
    nrf: NrfSettings = NrfSettings()
    oauth2: OAuth2Settings = OAuth2Settings()

    sms: SmsSettings = SmsSettings()
    notices: NoticeSettings = NoticeSettings()
    fraud: FraudSettings = FraudSettings()
    diameter: DiameterSettings = DiameterSettings()
    # Extra parts appended after the built-in ones, as ``module:factory`` import paths; each
    # factory takes the ``Runtime`` and returns a ``Part`` (site add-ons, test harnesses).
    extra_parts: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = \
        Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_networks(self) -> Settings:
        seen: set[str] = set()
        for n in self.networks:
            for p in n.plmn_ids:
                if p in seen:
                    raise ValueError(f"plmn id {p} belongs to more than one host network")
                seen.add(p)
        return self

    @model_validator(mode="after")
    def _network_listeners(self) -> Settings:
        srv = self.server
        taken = {srv.sbi_port: "server.sbi_port", srv.oam_port: "server.oam_port"}
        for n in self.listener_networks():
            where = f"networks[{n.id}].sbi_port"
            if not srv.tls:
                raise ValueError(f"{where}: a host network's own SBI listener needs TLS "
                                 "(server.tls_cert_file and server.tls_key_file)")
            if n.sbi_port in taken:
                raise ValueError(f"{where}: port {n.sbi_port} is already "
                                 f"{taken[n.sbi_port]}; each listener needs its own port")
            assert n.sbi_port is not None
            taken[n.sbi_port] = where
        if srv.listener_network is not None:
            net = self.network(srv.listener_network)
            if net is None or net.sbi_port is None:
                raise ValueError(f"server.listener_network: {srv.listener_network!r} is no "
                                 "host network with its own sbi_port")
        return self

    @model_validator(mode="after")
    def _diameter_networks(self) -> Settings:
        d = self.diameter
        if (d.tls_cert_file is None) != (d.tls_key_file is None):
            raise ValueError("diameter: tls_cert_file and tls_key_file go together")
        seen: dict[str, str] = {}
        for net_id, dn in d.networks.items():
            if self.network(net_id) is None:
                raise ValueError(f"diameter.networks: {net_id!r} is no host network id")
            for peer in dn.peers:
                if peer in seen:
                    raise ValueError(f"diameter.networks: peer {peer!r} is listed under "
                                     f"{seen[peer]} and {net_id}")
                seen[peer] = net_id
        return self

    def listener_networks(self) -> list[HostNetwork]:
        """The host networks with their own SBI listener (``sbi_port``)."""
        return [n for n in self.networks if n.sbi_port is not None]

    def network_for_plmn(self, plmn: str) -> HostNetwork | None:
        for n in self.networks:
            if plmn in n.plmn_ids:
                return n
        return None

    def network(self, network_id: str) -> HostNetwork | None:
        return next((n for n in self.networks if n.id == network_id), None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (passed as init kwargs by ``load``).
        return (env_settings, init_settings)

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> Settings:
        """Read ``path`` (or ``$NF_CONFIG``), overlay the environment, validate.

        Raises ``ConfigError`` with a message naming every bad key.
        """
        if path is None and os.environ.get("NF_CONFIG"):
            path = Path(os.environ["NF_CONFIG"])
        data: dict[str, Any] = {}
        if path is not None:
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
            except yaml.YAMLError as e:
                raise ConfigError(f"{path}: not valid YAML: {e}") from None
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: the top level must be a mapping")
            data = loaded
            base = path.parent
            if isinstance(data.get("catalog_dir"), str):
                cat = Path(data["catalog_dir"])
                data["catalog_dir"] = cat if cat.is_absolute() else base / cat
        data.update(overrides)
        try:
            return cls(**data)
        except ValidationError as e:
            lines = []
            for err in e.errors():
                key = ".".join(str(p) for p in err["loc"]) or "(top level)"
                lines.append(f"  {key}: {err['msg']}")
            where = f"{path}" if path else "configuration"
            raise ConfigError(f"{where} is invalid:\n" + "\n".join(lines)) from None
