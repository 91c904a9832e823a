"""The sections of the NF's peers in the core: NRF registration and OAuth2 tokens.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from nf.settings.base import Frozen


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
