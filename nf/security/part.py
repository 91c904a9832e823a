"""The SBI's authentication hook, as a part.

With ``oauth2.required`` every request to a 3GPP service of this NF (the path's first
segment is a service name: ``nchf-convergedcharging``, ``nchf-spendinglimitcontrol``,
``npcf-smpolicycontrol``) must carry a bearer token that ``TokenVerifier`` accepts for that
service and for the NF type serving it; the token's host network becomes the request's
caller (``nf.security.caller.current()``). ``/healthz`` and unknown paths are not guarded.

In a process serving a host network's own SBI listener (``server.listener_network``; the
server admits only client certificates signed by that network's CA bundle) the caller is
that network, with or without a token; a token of another host network there is refused
with 403 ``PLMN_NOT_ALLOWED``.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import httpx
from quart import Blueprint, request

from nf import logs
from nf.config import Settings
from nf.metrics import OPERATION_KEY
from nf.nrf.profile import audiences, service_of
from nf.runtime import Role, Runtime, Worker
from nf.security import caller as callers
from nf.security import keys
from nf.security.tokens import TokenVerifier, bearer

log = logging.getLogger("nf.security")


class SecurityPart:
    name = "security"

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        cfg = rt.settings.oauth2
        self.required = cfg.required
        self.verifier: TokenVerifier | None = None
        if cfg.required:
            assert cfg.issuer is not None
            self.verifier = TokenVerifier(issuer=cfg.issuer, algorithms=cfg.algorithms,
                                          leeway_s=cfg.leeway_s, cache_size=cfg.cache_size)
            if cfg.jwks_file is not None:
                # A bad file stops the NF at start (ConfigError), like any bad setting.
                self.verifier.set_keys(keys.load_file(cfg.jwks_file))
        self._audiences = {t: audiences(rt.settings, t) for t in ("CHF", "PCF")}
        # In a process serving a host network's own SBI listener: that network.
        self._listener = rt.settings.network(rt.settings.server.listener_network or "")
        _warn_open_networks(rt.settings)

    def blueprints(self, role: Role) -> list[Blueprint]:
        if role != "sbi" or (self.verifier is None and self._listener is None):
            return []
        bp = Blueprint("sbi_security", __name__)

        @bp.before_app_request
        async def _authenticate() -> None:
            if request.url_rule is not None and request.url_rule.endpoint \
                    and service_of(request.path) is not None:
                # The metrics label of the operation, also for refused requests.
                cast(dict[str, Any], request.scope)[OPERATION_KEY] = request.url_rule.endpoint
            self.authenticate(request.path, None, request.headers.get("Authorization"))

        return [bp]

    def authenticate(self, path: str, endpoint: str | None,
                     authorization: str | None) -> None:
        """Who calls a 3GPP service of this NF (``nf.security.caller.current()``), or an
        ``NfError`` refusing the request; nothing to do for other paths, or when neither
        tokens nor a host network's own listener are configured. Run for every request:
        by the blueprint's hook, and by the direct path (``nf.sbi.direct``)."""
        listener = self._listener
        callers.set_current(None)  # nothing of an earlier request in the same context
        if self.verifier is None and listener is None:
            return
        svc = service_of(path)
        if svc is None:
            return
        if self.verifier is None:
            assert listener is not None
            callers.set_current(callers.Caller(listener, listener.plmn_ids[0], None))
            return
        service, nf_type = svc
        claims = self.verifier.verify(bearer(authorization), service=service,
                                      audiences=self._audiences[nf_type],
                                      now=self._rt.clock.now().timestamp())
        caller = callers.resolve(self._rt.settings, claims)
        if listener is not None:
            callers.check_listener(caller, listener)
        callers.set_current(caller)

    async def ensure_indexes(self) -> None:
        return None

    async def start(self) -> None:
        # Every process verifies tokens, so every process loads the keys (also the SBI
        # workers that leave index checks to the OAM process).
        uri = self._rt.settings.oauth2.jwks_uri
        if self.verifier is not None and uri is not None:
            await self._refresh(uri)

    def workers(self) -> list[Worker]:
        uri = self._rt.settings.oauth2.jwks_uri
        return [self._refresher] if self.verifier is not None and uri is not None else []

    async def _refresh(self, uri: str) -> bool:
        assert self.verifier is not None
        async with httpx.AsyncClient(timeout=5.0) as client:
            ks = await keys.fetch(client, uri)
        if ks is not None:
            self.verifier.set_keys(ks)
        return ks is not None

    async def _refresher(self) -> None:
        uri = self._rt.settings.oauth2.jwks_uri
        assert uri is not None
        every = self._rt.settings.oauth2.jwks_refresh_s
        while not self._rt.stopping.is_set():
            # Until the first load succeeds, try again soon.
            loaded = self.verifier is not None and self.verifier.keys is not None
            await self._rt.pause(every if loaded else min(every, 5.0))
            if not self._rt.stopping.is_set():
                await self._refresh(uri)


def _warn_open_networks(settings: Settings) -> None:
    for n in settings.networks:
        if n.notify_cidrs is None and n.notify_fqdn_suffixes is None:
            logs.log(log, logging.WARNING, "host network has no notification allow-list: "
                     "its SMFs may have notifications sent anywhere", network=n.id)
