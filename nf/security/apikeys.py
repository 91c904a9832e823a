"""API keys of the care API (on OAM): how they are given and how a presented key is checked.

``Settings.api_keys`` maps a key *reference* to a brand (or ``*``, the operator-wide
admin). A reference is one of::

    sha256:<64 hex digits>   the SHA-256 digest of the key (the key itself is nowhere)
    env:NAME                 the key is in environment variable NAME
    file:/path               the key is the content of a file (a mounted Kubernetes
                             Secret), surrounding whitespace removed
    anything else            the key itself, in plain text (demo and tests only)

Only SHA-256 digests are kept in memory. A presented key is hashed and compared with
every digest using ``hmac.compare_digest``, always all of them, so neither the answer
time nor an early exit tells how much of a key was right.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quart import request

from nf.errors import ConfigError, Unauthorized
from nf.runtime import KeyLookup

# The scope of an operator-wide admin key (any other scope is one brand).
ADMIN = "*"

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
REFERENCE = re.compile(r"^(sha256:[0-9a-fA-F]{64}|env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|"
                       r"(?!sha256:|env:|file:).+)$")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def resolve(reference: str) -> bytes:
    """The SHA-256 digest a reference stands for; ``ConfigError`` naming what is missing."""
    kind, _, rest = reference.partition(":")
    if kind == "sha256" and _HEX64.match(rest):
        return bytes.fromhex(rest)
    if kind == "env" and rest:
        value = os.environ.get(rest)
        if not value:
            raise ConfigError(f"api_keys: environment variable {rest} is not set or empty")
        return digest(value.strip())
    if kind == "file" and rest.startswith("/"):
        try:
            value = Path(rest).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"api_keys: cannot read key file {rest}: {e.strerror}") from None
        if not value:
            raise ConfigError(f"api_keys: key file {rest} is empty")
        return digest(value)
    if kind in ("sha256", "env", "file"):
        raise ConfigError(f"api_keys: malformed reference {kind}:…")
    return digest(reference)


@dataclass(frozen=True)
class KeyRing:
    entries: tuple[tuple[bytes, str], ...]

    @classmethod
    def from_settings(cls, api_keys: Mapping[str, str]) -> KeyRing:
        return cls(tuple((resolve(ref), brand) for ref, brand in api_keys.items()))

    def brand(self, presented: str) -> str | None:
        """The brand (or ``*``) of a presented key, or None."""
        d = digest(presented)
        found: str | None = None
        for known, brand in self.entries:
            if hmac.compare_digest(d, known) and found is None:
                found = brand
        return found


def api_scope(keys: KeyLookup) -> str:
    """The brand (or ``ADMIN``) of the request's ``X-API-Key``; 401 without a known key."""
    key = request.headers.get("X-API-Key")
    if not key:
        raise Unauthorized("missing X-API-Key header")
    brand = keys.brand(key)
    if brand is None:
        raise Unauthorized("unknown API key")
    return brand
