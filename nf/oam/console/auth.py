"""Console sign-in: who is signed in (a key id, never the key), their scope and the CSRF
token of their session (the session itself is kept on the server: ``sessions``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from nf.runtime import KeyLookup
from nf.security.apikeys import ADMIN, digest, resolve


def key_id(key_digest: bytes) -> str:
    """A short, non-reversible name for a key (for the session and the audit trail)."""
    return hashlib.sha256(b"console-key-id:" + key_digest).hexdigest()[:12]


def session_secret(reference: str | None) -> str:
    if reference is None:
        return secrets.token_hex(32)
    return resolve(reference).hex()


@dataclass(frozen=True)
class Agent:
    key_id: str
    scope: str  # a brand, or "*" (operator admin)
    csrf: str

    @property
    def admin(self) -> bool:
        return self.scope == ADMIN


class Keys:
    """Which key ids are valid now, for which scope (a key removed from the settings, or
    given another scope, ends the sessions signed in with it)."""

    def __init__(self, ring: KeyLookup) -> None:
        self.ring = ring
        self.scopes = {key_id(d): brand for d, brand in ring.entries}

    def sign_in(self, presented: str) -> tuple[str, str] | None:
        brand = self.ring.brand(presented)
        if brand is None:
            return None
        return key_id(digest(presented)), brand


def csrf_ok(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)
