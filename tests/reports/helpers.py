"""EDR documents of the real layout for export and report tests (the end-to-end test
makes its EDRs through the CHF and PCF instead)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nf.edr.records import (
    Party,
    SpeedRecord,
    UnitRecord,
    charging_record,
    policy_record,
    purchase_record,
)

MIB = 1024 * 1024


def party(supi: str, brand: str = "lumen", network: str = "northwind",
          serving: str = "00101", roaming: bool = False) -> Party:
    return Party(supi=supi, gpsi="msisdn-" + supi[-10:], brand=brand, host_network=network,
                 serving_plmn=serving, roaming=roaming)


def charging(rid: str, t: datetime, p: Party, *, ul: int, dl: int, ref: str = "ref-1",
             rg: int = 10, debited: tuple[tuple[str, int], ...] = (), final: bool = False,
             throttled: bool = False, overage: int = 0, event: str = "update"
             ) -> dict[str, Any]:
    u = UnitRecord(rating_group=rg, used_ul=ul, used_dl=dl, used_total=ul + dl,
                   granted=MIB, debited=debited, final=final, throttled=throttled,
                   overage=overage)
    return charging_record(event=event, time=t, party=p, charging_data_ref=ref,
                           invocation_sequence_number=1, result="SUCCESS", units=[u],
                           record_id=rid)


def throttle(rid: str, t: datetime, p: Party) -> dict[str, Any]:
    return policy_record(event="throttled", time=t, party=p, sm_policy_id="pol-" + rid,
                         speed_before=SpeedRecord(4000, 20000), speed_after=SpeedRecord(64, 128),
                         reason="throttled", record_id=rid)


def purchase(rid: str, t: datetime, p: Party, offer: str, kind: str = "addon",
             price: int = 300, buckets: tuple[str, ...] = (), zone: str | None = None
             ) -> dict[str, Any]:
    return purchase_record(time=t, party=p, offer_id=offer, offer_version=1, offer_kind=kind,
                           price_cents=price, currency="USD", bucket_ids=buckets,
                           zone_name=zone, record_id=rid)
