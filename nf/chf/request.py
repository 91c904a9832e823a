"""What a charging request asks, read off the wire against the settings: its units (one
per rating group), the host network whose terms apply, and the session as the request
moves it (serving network, roaming). Plain functions; no I/O."""

from __future__ import annotations

from dataclasses import replace

from nf.chf import core
from nf.chf.core import Session, Terms, UnitRequest
from nf.chf.wire import ChargingDataRequest
from nf.config import HostNetwork, Settings
from nf.errors import BadRequest, InvalidParam
from nf.ledger import roaming


def unit_requests(req: ChargingDataRequest, max_groups: int) -> list[UnitRequest]:
    units: list[UnitRequest] = []
    seen: set[int] = set()
    for i, mu in enumerate(req.multipleUnitUsage or []):
        if mu.ratingGroup in seen:
            raise BadRequest(f"rating group {mu.ratingGroup} appears twice",
                             cause="MANDATORY_IE_INCORRECT", invalid_params=[InvalidParam(
                                 f"/multipleUnitUsage/{i}/ratingGroup", "duplicate")])
        seen.add(mu.ratingGroup)
        ul = dl = total = 0
        triggers: list[str] = []
        for c in mu.usedUnitContainer or []:
            ul += c.uplinkVolume or 0
            dl += c.downlinkVolume or 0
            total += c.total
            triggers += [t.triggerType for t in c.triggers or [] if t.triggerType]
        requested = None if mu.requestedUnit is None else (mu.requestedUnit.volume or 0)
        units.append(UnitRequest(mu.ratingGroup, requested, ul, dl, total, tuple(triggers)))
    if len(units) > max_groups:
        raise BadRequest(f"at most {max_groups} rating groups per request",
                         cause="MANDATORY_IE_INCORRECT")
    return units


def _terms(n: HostNetwork) -> Terms:
    return Terms(n.id, n.default_grant_bytes, n.validity_time_s,
                 n.volume_quota_threshold_pct, n.quota_holding_time_s)


# Only for an SMF of no configured host network asking about a subscriber of none either.
_FALLBACK_TERMS = _terms(HostNetwork(id="default", name="default", plmn_ids=["00000"]))


def network(s: Settings, *plmns: str | None, fallback_id: str | None = None) -> Terms:
    """The host network asking: the consumer's PLMN first, then the serving one, then
    the subscriber's home network."""
    for p in plmns:
        if p:
            n = s.network_for_plmn(p)
            if n is not None:
                return _terms(n)
    if fallback_id:
        n = s.network(fallback_id)
        if n is not None:
            return _terms(n)
    return _FALLBACK_TERMS


def home_plmns(s: Settings, home_network: str, home_plmn: str) -> list[str]:
    n = s.network(home_network)
    return list(roaming.home_plmns(s, home_network, "" if n is not None else home_plmn))


def updated(s: Settings, session: Session, req: ChargingDataRequest
            ) -> tuple[Session, Terms]:
    """The session as an update request moves it, and the terms of the network asking."""
    serving = req.serving_plmn or session.serving_plmn
    terms = network(s, req.consumer_plmn, serving, fallback_id=session.host_network)
    session = replace(
        session, serving_plmn=serving, host_network=terms.network_id,
        roaming=core.is_roaming(serving, home_plmns(s, session.home_network,
                                                    session.home_plmn)),
        notify_uri=req.notifyUri or session.notify_uri,
        validity_time_s=terms.validity_time_s)
    return session, terms
