"""The limits on console sign-ins, per request: a presented key locked out after too many
failures (``KeyLockout``), a client address slowed after each failure (``AddressDelay``),
a bound on the sign-ins waiting at once; with their metrics and the lockout log line."""

from __future__ import annotations

import logging
import math

from prometheus_client import Counter
from quart import request

from nf import logs
from nf.errors import NfError
from nf.oam.console.limits import AddressDelay, KeyLockout
from nf.runtime import Runtime

log = logging.getLogger("nf.console")


class SignInThrottle:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        cfg = self._cfg = rt.settings.console
        self._lockout = KeyLockout(cfg.sign_in_max_failures, cfg.sign_in_window_s,
                                   cfg.sign_in_lockout_s, cfg.sign_in_tracked_max)
        self._delays = AddressDelay(cfg.sign_in_delay_base_s, cfg.sign_in_delay_max_s,
                                    cfg.sign_in_window_s, cfg.sign_in_tracked_max)
        self._waiting = 0  # sign-ins waiting out their address's delay now
        r = rt.metrics.registry
        self._failures = Counter("nf_console_sign_in_failures_total",
                                 "Console sign-ins refused for a wrong key", registry=r)
        self._lockouts = Counter("nf_console_sign_in_lockouts_total",
                                 "Console sign-in lockouts, by what was locked out (key)",
                                 ["by"], registry=r)
        self._refused = Counter(
            "nf_console_sign_in_limited_total",
            "Console sign-ins refused with 429 (a locked key, too many waiting)", registry=r)
        self._delayed = Counter(
            "nf_console_sign_in_delayed_total",
            "Console sign-ins made to wait after failures from their address", registry=r)

    def client_address(self) -> str:
        """The request's client: the configured proxy header's first entry, else the peer."""
        header = self._cfg.client_address_header
        if header:
            first = request.headers.get(header, "").split(",")[0].strip()[:64]
            if first:
                return first
        return str(request.remote_addr or "unknown")[:64]

    def _too_many(self, wait_s: int) -> NfError:
        self._refused.inc()
        return NfError(f"too many failed sign-ins; try again in {wait_s} s", 429,
                       "TOO_MANY_REQUESTS", "Too many attempts", retry_after_s=wait_s)

    async def admit(self, kid: str, address: str) -> None:
        """Refuse a locked-out key (429); then wait out the address's delay (none before
        its first failure), so a guesser is slowed while a colleague behind the same NAT
        still gets in."""
        clock = self._rt.clock
        wait = self._lockout.retry_after(kid, clock.monotonic())
        if wait is not None:
            raise self._too_many(wait)
        delay = self._delays.delay_s(address, clock.monotonic())
        if delay <= 0:
            return
        if self._waiting >= self._cfg.sign_in_waiting_max:
            raise self._too_many(max(1, math.ceil(delay)))
        self._delayed.inc()
        self._waiting += 1
        try:
            await clock.sleep(delay)
        finally:
            self._waiting -= 1

    def failed(self, kid: str, address: str) -> None:
        """A wrong key: counted against the key (lockout) and the address (delay)."""
        self._failures.inc()
        now = self._rt.clock.monotonic()
        self._delays.failed(address, now)
        if self._lockout.failed(kid, now):
            self._lockouts.labels("key").inc()
            cfg = self._cfg
            logs.log(log, logging.WARNING, "console sign-in locked out", by="key",
                     address=address, key_id=kid, failures=cfg.sign_in_max_failures,
                     window_s=cfg.sign_in_window_s, lockout_s=cfg.sign_in_lockout_s)
