"""A token issuer for tests, independent of the NF's JOSE library: ES256 JWTs signed with
``cryptography`` directly (RFC 7515/7518 by hand), and their public keys as a JWKS.

    issuer = Issuer("nrf-test")
    token = issuer.token(aud="CHF", scope="nchf-convergedcharging",
                         consumerPlmnId={"mcc": "001", "mnc": "01"})
    Path("jwks.json").write_text(json.dumps(issuer.jwks()))
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, iss: str, kid: str | None = None) -> None:
        self.iss = iss
        self.kid = kid or uuid.uuid4().hex[:8]
        self.key = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        pub = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                          "alg": "ES256", "x": b64u(pub.x.to_bytes(32, "big")),
                          "y": b64u(pub.y.to_bytes(32, "big"))}]}

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        head = {"alg": "ES256", "typ": "JWT", "kid": self.kid, **(header or {})}
        signing_input = (b64u(json.dumps(head).encode()) + "."
                         + b64u(json.dumps(claims).encode())).encode()
        der = self.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input.decode() + "." + b64u(r.to_bytes(32, "big")
                                                   + s.to_bytes(32, "big"))

    def token(self, *, aud: str | list[str], scope: str, sub: str = "smf-1",
              ttl_s: float = 3600, now: float | None = None, **extra: Any) -> str:
        t = time.time() if now is None else now
        claims: dict[str, Any] = {"iss": self.iss, "sub": sub, "aud": aud, "scope": scope,
                                  "iat": int(t), "exp": int(t + ttl_s), **extra}
        return self.sign(claims)


def plmn(p: str) -> dict[str, str]:
    return {"mcc": p[:3], "mnc": p[3:]}
