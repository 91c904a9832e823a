"""Signatures on the webhooks the NF sends to a brand (subscriber notices, fraud cases).

HMAC-SHA256 over ``<timestamp>.<body>`` with the brand's secret, sent as
``X-Nf-Signature: t=<unix seconds>,v1=<hex>``. The receiver recomputes it over the body
it got and rejects a timestamp older than a few minutes, so a captured request cannot be
replayed later. Pure: the secret and the time are arguments.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Nf-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Nf-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver does (used by the tests; documented for brands)."""
    try:
        fields = dict(p.split("=", 1) for p in header.split(","))
        ts = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header)
