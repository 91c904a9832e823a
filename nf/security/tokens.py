"""OAuth2 bearer-token verification for the SBI (pure: keys and time are arguments).

A token is a JWS-signed JWT from the NRF (the authorization server of TS 33.501 13.4.1).
Checked, in this order: that it is there (401 without an error code), that it is a JWT
signed by one of the issuer's keys with an allowed algorithm, ``exp`` (and ``nbf``/``iat``
if present) with a leeway, ``iss``, that ``aud`` names this NF instance or its NF type
(all 401 ``invalid_token``), and that ``scope`` contains the called service's name (403
``insufficient_scope``). Challenges follow RFC 6750 section 3.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from nf.errors import Forbidden, Unauthorized

REALM = "5gc-sbi"


def challenge(error: str | None = None, description: str | None = None,
              scope: str | None = None) -> str:
    """An RFC 6750 ``WWW-Authenticate: Bearer`` challenge."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        safe = description.replace("\\", "").replace('"', "'")
        parts.append(f'error_description="{safe}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


def invalid_token(why: str) -> Unauthorized:
    return Unauthorized(f"access token refused: {why}",
                        www_authenticate=challenge("invalid_token", why))


@dataclass(frozen=True)
class Claims:
    """What the NF uses from a verified token."""

    subject: str | None  # the consumer's NF instance id
    audiences: tuple[str, ...]
    scopes: frozenset[str]
    expires: float
    consumer_plmn: str | None  # consumerPlmnId (inter-PLMN tokens), MCC+MNC


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer ...`` header, or 401."""
    if not authorization:
        raise Unauthorized("an access token is required (Authorization: Bearer)",
                           www_authenticate=challenge())
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header is not a Bearer token",
                           www_authenticate=challenge("invalid_request",
                                                      "use the Bearer scheme"))
    return token


def _plmn(value: Any) -> str | None:
    if isinstance(value, dict):
        mcc, mnc = value.get("mcc"), value.get("mnc")
        if isinstance(mcc, str) and isinstance(mnc, str) and mcc.isdigit() \
                and mnc.isdigit() and len(mcc) == 3 and len(mnc) in (2, 3):
            return mcc + mnc
    return None


def _audiences(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()


def _scopes(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):  # some issuers send an array
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


class TokenVerifier:
    """Verifies tokens against ``keys`` (replaceable: ``keys`` may be refreshed)."""

    def __init__(self, *, issuer: str, algorithms: Collection[str], leeway_s: int = 30,
                 cache_size: int = 10_000) -> None:
        self.issuer = issuer
        self.algorithms = list(algorithms)
        self.leeway_s = leeway_s
        self.keys: KeySet | None = None
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    def set_keys(self, keys: KeySet) -> None:
        self.keys = keys
        self._cache.clear()

    def claims(self, token: str, now: float) -> Claims:
        """Signature, lifetime and issuer; 401 ``invalid_token`` on any failure."""
        hit = self._cache.get(token)
        if hit is not None:
            if hit.expires + self.leeway_s < now:
                del self._cache[token]
                raise invalid_token("the token has expired")
            return hit
        if self.keys is None:
            raise Unauthorized("no verification keys are loaded yet",
                               www_authenticate=challenge("invalid_token",
                                                          "keys not loaded"))
        try:
            tok = jwt.decode(token, self.keys, algorithms=self.algorithms)
        except (JoseError, ValueError, TypeError, KeyError) as e:
            raise invalid_token(f"not a token signed by the issuer ({type(e).__name__})") \
                from None
        c = tok.claims
        exp = c.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise invalid_token("the token has no exp")
        if exp + self.leeway_s < now:
            raise invalid_token("the token has expired")
        for name in ("nbf", "iat"):
            t = c.get(name)
            if isinstance(t, int | float) and t - self.leeway_s > now:
                raise invalid_token(f"the token's {name} lies in the future")
        if c.get("iss") != self.issuer:
            raise invalid_token("the token is from another issuer")
        sub = c.get("sub")
        out = Claims(subject=sub if isinstance(sub, str) else None,
                     audiences=_audiences(c.get("aud")), scopes=_scopes(c.get("scope")),
                     expires=float(exp), consumer_plmn=_plmn(c.get("consumerPlmnId")))
        if self._cache_size:
            self._cache[token] = out
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def verify(self, token: str, *, service: str, audiences: Iterable[str],
               now: float | None = None) -> Claims:
        """Everything: ``claims`` plus audience (401) and scope (403)."""
        c = self.claims(token, time.time() if now is None else now)
        if not set(c.audiences) & set(audiences):
            raise invalid_token("the token is for another audience")
        if service not in c.scopes:
            raise Forbidden(f"the token's scope does not include {service}",
                            cause="INSUFFICIENT_SCOPE",
                            www_authenticate=challenge("insufficient_scope",
                                                       f"{service} is not in scope",
                                                       scope=service))
        return c
