"""The calling host network, and the checks the SBI handlers run with it.

With OAuth2 on, the host network comes from the verified token: its ``consumerPlmnId``
(inter-PLMN tokens, TS 29.510) names one of the network's PLMNs, or its ``sub`` is one of
the network's ``consumer_nf_instance_ids``. Bodies may then no longer choose the network:
``check_plmns`` refuses a body that names a PLMN of another configured host network, and
``check_owner`` refuses access to a resource another network created.

With mTLS, a host network may have its own SBI listener (``networks[].sbi_port``) that
admits only client certificates signed by its own CA bundle: a request arriving there is
that network's (its first PLMN), with or without a token, and a token of another network is
refused (``check_listener``). Neither Granian nor Hypercorn hands the peer certificate to
the app, so the listener, not the certificate, names the network.

Elsewhere without OAuth2 there is no caller (``current()`` is ``None``) and these checks
pass: the shared SBI port trusts the body's PLMNs.

``check_notify_uri`` applies either way: a notification target must lie inside the
calling network's allow-list (``notify_cidrs`` / ``notify_fqdn_suffixes``), else the
creation is refused with 400 naming the field.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from nf import logs
from nf.config import HostNetwork, Settings
from nf.errors import BadRequest, Forbidden, InvalidParam
from nf.security.tokens import Claims

log = logging.getLogger("nf.security")

# The request's caller: a context variable, so the direct path (no framework context,
# ``nf.sbi.direct``) and the framework's views see the same.
_CURRENT: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("nf_caller",
                                                                        default=None)


@dataclass(frozen=True)
class Caller:
    """An authenticated consumer: its host network and, when the token said, its PLMN."""

    network: HostNetwork
    plmn: str
    subject: str | None


def resolve(settings: Settings, claims: Claims) -> Caller:
    """The host network of a verified token's consumer; 403 when it is none of ours."""
    if claims.consumer_plmn is not None:
        net = settings.network_for_plmn(claims.consumer_plmn)
        if net is None:
            raise Forbidden(f"the token's consumerPlmnId {claims.consumer_plmn} is not a "
                            "host network of this NF")
        return Caller(net, claims.consumer_plmn, claims.subject)
    if claims.subject:
        for net in settings.networks:
            if claims.subject in net.consumer_nf_instance_ids:
                return Caller(net, net.plmn_ids[0], claims.subject)
    raise Forbidden("the token names no host network (no consumerPlmnId, and its sub is "
                    "no configured consumer)")


def check_listener(caller: Caller, listener: HostNetwork) -> None:
    """403 unless a token's host network is the one whose own listener it arrived on."""
    if caller.network.id == listener.id:
        return
    logs.log(log, logging.WARNING, "token of another host network on a network's own "
             "listener refused", listener_network=listener.id,
             token_network=caller.network.id, subject=caller.subject)
    raise Forbidden(f"this SBI listener serves host network {listener.id}; the access "
                    f"token is for {caller.network.id}", cause="PLMN_NOT_ALLOWED")


def set_current(caller: Caller | None) -> None:
    """The caller of the request being handled (each request runs in a context of its
    own; ``None`` forgets a caller the context may hold)."""
    _CURRENT.set(caller)
    if caller is not None:
        logs.bind(caller_network=caller.network.id)


def current() -> Caller | None:
    """The authenticated caller of the request being handled (``None`` without OAuth2,
    outside a host network's own listener)."""
    return _CURRENT.get()


def check_plmns(settings: Settings, caller: Caller | None, *,
                consumer: tuple[str, str | None] | None = None,
                others: Iterable[tuple[str, str | None]] = ()) -> None:
    """Refuse (403) a body that speaks for another network: the ``consumer`` PLMN field must
    be one of the caller's PLMNs; any of ``others`` (serving PLMNs) must not belong to
    another configured host network. Each is ``(json pointer, plmn or None)``."""
    if caller is None:
        return
    if consumer is not None and consumer[1] is not None \
            and consumer[1] not in caller.network.plmn_ids:
        raise _foreign(consumer[0], consumer[1], caller)
    for field, plmn in others:
        if plmn is None:
            continue
        owner = settings.network_for_plmn(plmn)
        if owner is not None and owner.id != caller.network.id:
            raise _foreign(field, plmn, caller)


def _foreign(field: str, plmn: str, caller: Caller) -> Forbidden:
    logs.log(log, logging.WARNING, "body names another host network's PLMN",
             field=field, plmn=plmn, caller_network=caller.network.id)
    return Forbidden(f"{field} names PLMN {plmn}, which is not the calling host network's "
                     f"({caller.network.id})", cause="PLMN_NOT_ALLOWED")


def check_owner(caller: Caller | None, owner: str | None, what: str) -> None:
    """403 unless the caller's host network created the resource (``owner``). A resource
    without a recorded owner (made before host networks were recorded) is not refused."""
    if caller is None or owner is None or owner == caller.network.id:
        return
    logs.log(log, logging.WARNING, "access to another host network's resource refused",
             resource=what, owner=owner, caller_network=caller.network.id)
    raise Forbidden(f"{what} belongs to another host network")


async def check_caller_owns(owner_of: Callable[[str], Awaitable[str | None]],
                            resource_id: str, what: str) -> None:
    """``check_owner`` for this request's caller (``current``) and the resource's owner as
    ``owner_of`` finds it; nothing is read when the caller's network is unknown."""
    caller = current()
    if caller is not None:
        check_owner(caller, await owner_of(resource_id), what)


def network_of(settings: Settings, caller: Caller | None,
               plmns: Iterable[str | None]) -> HostNetwork | None:
    """The network a request is for: the caller's, else the first body PLMN that is one
    of ours."""
    if caller is not None:
        return caller.network
    for p in plmns:
        if p:
            net = settings.network_for_plmn(p)
            if net is not None:
                return net
    return None


def uri_allowed(net: HostNetwork, uri: str) -> bool:
    """Whether ``uri``'s host lies in ``net``'s notification allow-list (unset: any)."""
    if net.notify_cidrs is None and net.notify_fqdn_suffixes is None:
        return True
    try:
        host = urlsplit(uri).hostname
    except ValueError:
        return False
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        for suffix in net.notify_fqdn_suffixes or ():
            s = suffix.lower().strip(".")
            if name == s or name.endswith("." + s):
                return True
        return False
    return any(addr in cidr for cidr in net.notify_cidrs or ())


def check_notify_uri(net: HostNetwork | None, field: str, uri: str | None) -> None:
    """400 naming ``field`` when ``uri`` is outside ``net``'s allow-list."""
    if net is None or uri is None or uri_allowed(net, uri):
        return
    logs.log(log, logging.WARNING, "notification target outside the allow-list",
             field=field, network=net.id)
    raise BadRequest(f"{field} is not an allowed notification target for host network "
                     f"{net.id}", cause="INVALID_MSG_FORMAT",
                     invalid_params=[InvalidParam(f"/{field}",
                                                  "not in the host network's allow-list")])
