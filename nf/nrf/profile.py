"""This NF's instance ids and NF profiles (TS 29.510 NFProfile). Pure."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from nf.config import HostNetwork, Settings, SupiRange
from nf.settings.server import sbi_listener

# The namespace of this NF's instance ids (a fixed, random UUID).
_NAMESPACE = uuid.UUID("6f1d3c2e-5a7b-4e8f-9c0d-2b4a6e8f1a3c")

NF_TYPES = ("CHF", "PCF")

# Service name -> (NF type, version in the URI, full version), as served by this NF.
SERVICES: dict[str, tuple[str, str, str]] = {
    "nchf-convergedcharging": ("CHF", "v3", "3.1.6"),
    "nchf-spendinglimitcontrol": ("CHF", "v1", "1.2.0"),
    "npcf-smpolicycontrol": ("PCF", "v1", "1.2.4"),
}


def instance_id(settings: Settings, nf_type: str) -> str:
    """The NF instance id of this NF's ``nf_type`` profile: the same at every start and in
    every process for the same ``instance_id`` setting."""
    return str(uuid.uuid5(_NAMESPACE, f"{settings.instance_id}/{nf_type}"))


def service_of(path: str) -> tuple[str, str] | None:
    """``(service name, NF type)`` of an SBI request path, or ``None`` (health, unknown)."""
    first = path.lstrip("/").split("/", 1)[0]
    entry = SERVICES.get(first)
    return (first, entry[0]) if entry else None


def audiences(settings: Settings, nf_type: str) -> frozenset[str]:
    """What a token's ``aud`` may name to call this NF's ``nf_type`` services."""
    return frozenset({instance_id(settings, nf_type), nf_type,
                      *settings.oauth2.extra_audiences})


def _plmn(p: str) -> dict[str, str]:
    return {"mcc": p[:3], "mnc": p[3:]}


def _supi_range(r: SupiRange) -> dict[str, str]:
    if r.pattern is not None:
        return {"pattern": r.pattern}
    assert r.start is not None and r.end is not None
    return {"start": r.start, "end": r.end}


def _endpoint(settings: Settings) -> tuple[str | None, list[str], int]:
    srv, nrf = settings.server, settings.nrf
    port = nrf.port or srv.sbi_port
    addrs = list(nrf.ipv4_addresses)
    if not addrs and nrf.fqdn is None:
        try:
            ip = ipaddress.ip_address(srv.sbi_host)
        except ValueError:
            ip = None
        if ip is not None and ip.version == 4 and not ip.is_unspecified:
            addrs = [str(ip)]
    return nrf.fqdn, addrs, port


def _ip_end_points(addrs: list[str], port: int) -> list[dict[str, Any]]:
    def one(a: str) -> dict[str, Any]:
        return {"ipv6Address" if ":" in a else "ipv4Address": a, "transport": "TCP",
                "port": port}

    return [one(a) for a in addrs] or [{"transport": "TCP", "port": port}]


def _listener_endpoint(settings: Settings, net: HostNetwork) -> tuple[str | None, list[str],
                                                                      int]:
    """How peers reach host network ``net``'s own listener: its own address when it binds
    one of its own, else where they reach the shared SBI (``nrf.fqdn``, ``nrf.ipv4_addresses``
    or the SBI host), on the listener's port."""
    fqdn, addrs, _ = _endpoint(settings)
    own = sbi_listener(settings.server, net)
    if own.host != settings.server.sbi_host:
        try:
            ip = ipaddress.ip_address(own.host)
        except ValueError:
            ip = None
        if ip is not None and not ip.is_unspecified:
            return None, [str(ip)], own.port
    return fqdn, addrs, own.port


def nf_profile(settings: Settings, nf_type: str) -> dict[str, Any]:
    """The NFProfile to register for ``nf_type`` (``CHF`` or ``PCF``).

    Each service is listed once for the shared SBI port and once more for each host network
    with its own listener (``networks[].sbi_port``), allowed to that network's PLMNs only;
    the shared instances are allowed to the other networks' PLMNs (and left out when every
    network has its own listener), so an SMF is shown the listener meant for it.
    """
    nrf = settings.nrf
    scheme = "https" if settings.server.tls else "http"
    plmns = [p for n in settings.networks for p in n.plmn_ids]
    own = settings.listener_networks()
    shared = [p for n in settings.networks if n.sbi_port is None for p in n.plmn_ids]
    # (instance suffix, endpoint, PLMNs allowed; empty: any)
    listeners: list[tuple[str, tuple[str | None, list[str], int], list[str]]] = []
    if shared or not own:
        listeners.append(("", _endpoint(settings), shared))
    listeners += [(f"-{n.id}", _listener_endpoint(settings, n), n.plmn_ids) for n in own]
    services = []
    for suffix, (fqdn, addrs, port), allowed in listeners:
        for name, (svc_type, v_uri, v_full) in SERVICES.items():
            if svc_type != nf_type:
                continue
            svc: dict[str, Any] = {
                "serviceInstanceId": name + suffix, "serviceName": name,
                "versions": [{"apiVersionInUri": v_uri, "apiFullVersion": v_full}],
                "scheme": scheme, "nfServiceStatus": "REGISTERED",
                "ipEndPoints": _ip_end_points(addrs, port),
                "capacity": nrf.capacity, "priority": nrf.priority,
            }
            if fqdn:
                svc["fqdn"] = fqdn
            if settings.server.api_root:
                svc["apiPrefix"] = settings.server.api_root.rstrip("/")
            if allowed:
                svc["allowedPlmns"] = [_plmn(p) for p in dict.fromkeys(allowed)]
            services.append(svc)
    profile: dict[str, Any] = {
        "nfInstanceId": instance_id(settings, nf_type),
        "nfType": nf_type,
        "nfStatus": "REGISTERED",
        "heartBeatTimer": nrf.heartbeat_s,
        "capacity": nrf.capacity,
        "priority": nrf.priority,
        # Rel-15/16 NRFs read the array, Rel-17 ones the map.
        "nfServices": services,
        "nfServiceList": {s["serviceInstanceId"]: s for s in services},
    }
    if plmns:
        profile["plmnList"] = [_plmn(p) for p in dict.fromkeys(plmns)]
    fqdn, addrs, _ = _endpoint(settings)
    if fqdn:
        profile["fqdn"] = fqdn
    if addrs:
        profile["ipv4Addresses"] = addrs
    ranges = [_supi_range(r) for r in nrf.supi_ranges]
    if nf_type == "CHF":
        info: dict[str, Any] = {}
        if ranges:
            info["supiRangeList"] = ranges
        if plmns:
            info["plmnRangeList"] = [{"start": p, "end": p} for p in dict.fromkeys(plmns)]
        profile["chfInfo"] = info
    else:
        pinfo: dict[str, Any] = {}
        if ranges:
            pinfo["supiRanges"] = ranges
        if nrf.dnns:
            pinfo["dnnList"] = list(nrf.dnns)
        profile["pcfInfo"] = pinfo
    return profile
