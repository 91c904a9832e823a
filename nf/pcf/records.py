"""The PCF's EDRs: one per decision version and event of a policy association (a re-run of
the same decision writes it once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nf.config import Settings
from nf.edr.records import Party, SpeedRecord, policy_record
from nf.ledger.port import Speed
from nf.notify.port import DIAMETER_SCHEME
from nf.pcf.core import Record, Subscriber
from nf.pcf.store import StoredPolicy


def _speed_record(s: Speed | None) -> SpeedRecord | None:
    return None if s is None else SpeedRecord(s.uplink_kbps, s.downlink_kbps)


def policy_edr(p: StoredPolicy, rec: Record, now: datetime, *,
               version: int, serving: str | None = None) -> dict[str, Any]:
    """The EDR of one record of a decision: one per decision version and event."""
    plmn = serving if serving is not None else p.state.serving_plmn
    pdu = p.context.get("pduSessionId")
    # A session controlled over Gx has its pushes sent over Diameter.
    gx = p.state.notification_uri.startswith(DIAMETER_SCHEME)
    party = Party(supi=p.state.supi, gpsi=p.gpsi, brand=p.brand,
                  host_network=p.host_network, serving_plmn=plmn,
                  roaming=p.state.roaming,
                  pdu_session_id=None if gx or not isinstance(pdu, int) else pdu,
                  interface="gx" if gx else "sbi")
    sid = p.state.sm_policy_id
    return policy_record(
        event=rec.kind, time=now, party=party, sm_policy_id=sid,
        speed_before=_speed_record(rec.speed_before),
        speed_after=_speed_record(rec.speed_after), reason=rec.reason,
        # One record per decision version and event: a re-run writes it once.
        record_id=f"pcf:{sid}:{version}:{rec.kind}",
        extra={"decision_version": version})


def host_network_of(settings: Settings, serving: str | None, sub: Subscriber | None
                    ) -> str | None:
    """The host network a new association's records name: the serving PLMN's, else the
    subscriber's home network."""
    net = settings.network_for_plmn(serving) if serving else None
    if net is not None:
        return net.id
    return sub.view.home_network if sub is not None else None
