"""What verifying an OAuth2 access token costs (``nf.security.tokens``), per token.

    PYTHONPATH=. .venv/bin/python bench/token_verify.py

Prints the median of 5 runs of 2,000 ES256 tokens, first sight (signature verified) and
remembered (the verifier's cache).
"""

from __future__ import annotations

import statistics
import time

from nf.security import keys
from nf.security.tokens import TokenVerifier
from tests.jwt_issuer import Issuer

SERVICE = "nchf-convergedcharging"
N = 2000
RUNS = 5


def per_token_us(issuer: Issuer, remembered: bool) -> float:
    v = TokenVerifier(issuer=issuer.iss, algorithms=["ES256"],
                      cache_size=10_000 if remembered else 0)
    v.set_keys(keys.parse_jwks(issuer.jwks(), "bench"))
    tokens = [issuer.token(aud="CHF", scope=SERVICE, sub=f"smf-{i}") for i in range(N)]
    if remembered:
        tokens = [tokens[0]] * N
    start = time.perf_counter()
    for t in tokens:
        v.verify(t, service=SERVICE, audiences={"CHF"})
    return (time.perf_counter() - start) / N * 1e6


def main() -> None:
    issuer = Issuer("bench-nrf")
    for name, remembered in (("first sight", False), ("remembered", True)):
        runs = [per_token_us(issuer, remembered) for _ in range(RUNS)]
        print(f"{name}: median {statistics.median(runs):.1f} us/token "
              f"(runs: {', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
