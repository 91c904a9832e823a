"""The NRF client: registers this NF's profiles, heartbeats, re-registers, deregisters.

Runs as a worker of the OAM app only (one process per NF instance; the SBI may have
several worker processes, which must not heartbeat each their own). Off while
``nrf.uri`` is unset. ``/readyz`` shows ``"nrf": {"CHF": "registered", ...}`` and never
turns unready because of the NRF: an NRF outage must not take the NF out of service.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from quart import Blueprint

from nf import logs
from nf.nrf import core
from nf.nrf.profile import NF_TYPES, instance_id, nf_profile
from nf.runtime import Role, Runtime, Worker

log = logging.getLogger("nf.nrf")

NFM = "/nnrf-nfm/v1/nf-instances"
_HEARTBEAT_PATCH = [{"op": "replace", "path": "/nfStatus", "value": "REGISTERED"}]


class NrfError(Exception):
    pass


class NrfPart:
    name = "nrf"

    def __init__(self, rt: Runtime, *, client: httpx.AsyncClient | None = None) -> None:
        self._rt = rt
        self._cfg = rt.settings.nrf
        self._client = client
        self._backoff = core.Backoff(self._cfg.initial_backoff_s, self._cfg.max_backoff_s)
        self.regs = {t: core.Registration(t, instance_id(rt.settings, t),
                                          heartbeat_s=self._cfg.heartbeat_s,
                                          check_s=self._cfg.profile_check_s)
                     for t in NF_TYPES}
        self.enabled = self._cfg.uri is not None and rt.role == "oam"
        if rt.role == "oam":
            rt.reports["nrf"] = self.report

    def report(self) -> dict[str, Any] | str:
        if self._cfg.uri is None:
            return "off"
        return {t: {"state": r.state, "nfInstanceId": r.instance_id,
                    **({"lastError": r.last_error} if r.last_error else {})}
                for t, r in self.regs.items()}

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    async def ensure_indexes(self) -> None:
        return None

    def workers(self) -> list[Worker]:
        return [self.run] if self.enabled else []

    # -- the worker -------------------------------------------------------------------------

    def _url(self, r: core.Registration) -> str:
        assert self._cfg.uri is not None
        return f"{self._cfg.uri.rstrip('/')}{NFM}/{r.instance_id}"

    async def run(self) -> None:
        own = self._client is None
        # A new connection per request: a few requests per heartbeat period, and some NRFs
        # close an h2c connection after one exchange.
        h2 = self._cfg.http2
        client = self._client or httpx.AsyncClient(
            http1=not h2, http2=h2, timeout=self._cfg.request_timeout_s,
            limits=httpx.Limits(max_keepalive_connections=0))
        clock = self._rt.clock
        try:
            while not self._rt.stopping.is_set():
                now = clock.monotonic()
                for t, r in list(self.regs.items()):
                    if r.action_at(now) is not None and not self._rt.stopping.is_set():
                        self.regs[t] = await self.step(client, r)
                    self._rt.metrics.nrf_registered.labels(t).set(
                        1 if self.regs[t].registered else 0)
                wait = core.next_due(list(self.regs.values())) - clock.monotonic()
                await self._rt.pause(max(0.05, wait))
            await self.deregister(client)
        finally:
            if own:
                await client.aclose()

    async def step(self, client: httpx.AsyncClient, r: core.Registration
                   ) -> core.Registration:
        """Do what ``r`` is due for; return its next state."""
        now = self._rt.clock.monotonic
        action = r.action_at(now()) or r.action
        try:
            if action is core.Action.CHECK:
                return await self._check(client, r)
            if action is core.Action.REGISTER:
                hb = await self._register(client, r)
                logs.log(log, logging.INFO, "registered with the NRF", nf_type=r.nf_type,
                         nf_instance_id=r.instance_id, heartbeat_s=hb,
                         again=r.registrations > 0)
                return core.registered(r, now(), hb)
            found, hb = await self._heartbeat(client, r)
            if not found:
                logs.log(log, logging.WARNING, "the NRF lost this profile; registering "
                         "again", nf_type=r.nf_type)
                return core.forgotten(r, now())
            return core.heartbeat_ok(r, now(), hb)
        except (httpx.HTTPError, NrfError) as e:
            if action is core.Action.CHECK:
                # The heartbeat, not the read-back, tells whether the NRF is reachable.
                logs.log(log, logging.WARNING, "reading the profile back from the NRF "
                         "failed", nf_type=r.nf_type, error=_describe(e))
                return core.checked(r, now())
            nxt = core.failed(r, now(), self._backoff, _describe(e))
            logs.log(log, logging.WARNING, "NRF request failed; retrying",
                     nf_type=r.nf_type, action=action.value, error=nxt.last_error,
                     retry_in_s=round(nxt.due_at - now(), 2))
            return nxt

    async def _check(self, client: httpx.AsyncClient, r: core.Registration
                     ) -> core.Registration:
        """NFProfileRetrieval of our own profile: 404 means the NRF lost it, even if it
        still answers heartbeats with 2xx."""
        now = self._rt.clock.monotonic
        resp = await _send(client, "GET", self._url(r))
        if resp.status_code == 404:
            logs.log(log, logging.WARNING, "the NRF no longer holds this profile; "
                     "registering again", nf_type=r.nf_type)
            return core.forgotten(r, now())
        if resp.status_code >= 300:
            raise NrfError(f"NFProfileRetrieval answered {resp.status_code}")
        return core.checked(r, now())

    async def _register(self, client: httpx.AsyncClient, r: core.Registration
                        ) -> float | None:
        profile = nf_profile(self._rt.settings, r.nf_type)
        resp = await _send(client, "PUT", self._url(r), json=profile)
        if resp.status_code not in (200, 201):
            raise NrfError(f"NFRegister answered {resp.status_code}: {resp.text[:200]}")
        return _heartbeat_timer(resp)

    async def _heartbeat(self, client: httpx.AsyncClient, r: core.Registration
                         ) -> tuple[bool, float | None]:
        resp = await _send(client, "PATCH", self._url(r), json=_HEARTBEAT_PATCH,
                           headers={"content-type": "application/json-patch+json"})
        if resp.status_code == 404:
            return False, None
        if resp.status_code not in (200, 204):
            raise NrfError(f"NFUpdate (heartbeat) answered {resp.status_code}")
        return True, _heartbeat_timer(resp) if resp.status_code == 200 else None

    async def deregister(self, client: httpx.AsyncClient) -> None:
        """NFDeregister every profile that is (or may be) registered; once, best effort."""
        for t, r in self.regs.items():
            if not r.registered and not r.registrations:
                continue
            try:
                resp = await _send(client, "DELETE", self._url(r))
                ok = resp.status_code in (200, 204, 404)
                logs.log(log, logging.INFO if ok else logging.WARNING,
                         "deregistered from the NRF" if ok else "NFDeregister refused",
                         nf_type=t, status=resp.status_code)
            except httpx.HTTPError as e:
                logs.log(log, logging.WARNING, "NFDeregister failed", nf_type=t,
                         error=_describe(e))
            self.regs[t] = core.Registration(t, r.instance_id, heartbeat_s=r.heartbeat_s,
                                             check_s=r.check_s)
            self._rt.metrics.nrf_registered.labels(t).set(0)


async def _send(client: httpx.AsyncClient, method: str, url: str, **kw: Any
                ) -> httpx.Response:
    """One request; retried once at once when the NRF dropped the connection before
    answering (no stream was processed, so the retry is safe)."""
    try:
        return await client.request(method, url, **kw)
    except (httpx.RemoteProtocolError, httpx.LocalProtocolError):
        return await client.request(method, url, **kw)


def _heartbeat_timer(resp: httpx.Response) -> float | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    hb = body.get("heartBeatTimer") if isinstance(body, dict) else None
    return float(hb) if isinstance(hb, int | float) and not isinstance(hb, bool) else None


def _describe(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text[:300]
