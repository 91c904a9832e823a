"""Where the NF listens and whom it talks to in the core: the ``server:`` section, the host
networks (and where an SBI listener binds), NRF registration and OAuth2 access tokens.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import Field, PlainSerializer, model_validator

from nf.settings.base import Frozen


class ServerSettings(Frozen):
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


class HostNetwork(Frozen):
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


class Listener(NamedTuple):
    """Where one server listens: address, port, worker processes, client CA bundle (mTLS)."""

    host: str
    port: int
    workers: int
    client_ca: Path | None


def sbi_listener(server: ServerSettings, net: HostNetwork | None) -> Listener:
    """The shared SBI listener (``net`` None) or host network ``net``'s own
    (``networks[].sbi_port``; address, workers default to the shared port's)."""
    srv = server
    if net is None:
        return Listener(srv.sbi_host, srv.sbi_port, srv.workers, srv.tls_client_ca_file)
    assert net.sbi_port is not None
    return Listener(net.sbi_host or srv.sbi_host, net.sbi_port, net.sbi_workers or srv.workers,
                    net.tls_client_ca_file)


class SupiRange(Frozen):
    start: str | None = Field(None, pattern=r"^[0-9]+$")
    end: str | None = Field(None, pattern=r"^[0-9]+$")
    pattern: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> SupiRange:
        if (self.start is None) != (self.end is None) or \
                (self.pattern is None) == (self.start is None):
            raise ValueError("a SUPI range is either start and end, or a pattern")
        return self


class NrfSettings(Frozen):
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


class OAuth2Settings(Frozen):
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
