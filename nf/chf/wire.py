"""Wire models of Nchf_ConvergedCharging v3 (TS 32.291): what the CHF reads from SMFs, and
the rendering of what it answers.

Only the attributes the CHF uses are modelled and checked; anything else an SMF sends is
tolerated (``extra="allow"``). Names are the specification's camelCase. Answers are built
as plain dicts from the core's dataclasses by the ``render_*`` functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nf.chf.core import Answer, Refusal, UnitAnswer
from nf.notify.port import notification_target

UINT32_MAX = 2**32 - 1
# Volumes are Uint64 in TS 32.291 but are stored, summed and compared as signed 64-bit
# integers: one report or request is bounded at 1 PB, so any sum of them stays far inside
# int64 and a larger value is a 400 naming the field instead of a failure in storage.
VOLUME_MAX = 10**15


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class PlmnId(_Wire):
    mcc: str = Field(pattern=r"^\d{3}$")
    mnc: str = Field(pattern=r"^\d{2,3}$")

    @property
    def plmn(self) -> str:
        return self.mcc + self.mnc


class NFIdentification(_Wire):
    nodeFunctionality: str = Field(min_length=1)
    nFName: str | None = None
    nFFqdn: str | None = None
    nFPLMNID: PlmnId | None = None


class Trigger(_Wire):
    triggerType: str | None = None
    triggerCategory: str


class RequestedUnit(_Wire):
    totalVolume: int | None = Field(None, ge=0, le=VOLUME_MAX)
    uplinkVolume: int | None = Field(None, ge=0, le=VOLUME_MAX)
    downlinkVolume: int | None = Field(None, ge=0, le=VOLUME_MAX)

    @property
    def volume(self) -> int | None:
        if self.totalVolume is not None:
            return self.totalVolume
        if self.uplinkVolume is not None or self.downlinkVolume is not None:
            return (self.uplinkVolume or 0) + (self.downlinkVolume or 0)
        return None


class UsedUnitContainer(_Wire):
    localSequenceNumber: int = Field(ge=0, le=UINT32_MAX)
    totalVolume: int | None = Field(None, ge=0, le=VOLUME_MAX)
    uplinkVolume: int | None = Field(None, ge=0, le=VOLUME_MAX)
    downlinkVolume: int | None = Field(None, ge=0, le=VOLUME_MAX)
    triggers: list[Trigger] | None = None

    @property
    def total(self) -> int:
        if self.totalVolume is not None:
            return self.totalVolume
        return (self.uplinkVolume or 0) + (self.downlinkVolume or 0)


class MultipleUnitUsage(_Wire):
    ratingGroup: int = Field(ge=0, le=UINT32_MAX)
    requestedUnit: RequestedUnit | None = None
    usedUnitContainer: list[UsedUnitContainer] | None = None


class PDUSessionInformation(_Wire):
    pduSessionID: int | None = Field(None, ge=0, le=255)
    dnnId: str | None = None
    servingCNPlmnId: PlmnId | None = None
    hPlmnId: PlmnId | None = None


class PDUSessionChargingInformation(_Wire):
    chargingId: int | None = Field(None, ge=0, le=UINT32_MAX)
    pduSessionInformation: PDUSessionInformation | None = None


class ChargingDataRequest(_Wire):
    subscriberIdentifier: str | None = Field(None, min_length=1, max_length=128)
    nfConsumerIdentification: NFIdentification
    invocationTimeStamp: datetime
    invocationSequenceNumber: int = Field(ge=0, le=UINT32_MAX)
    retransmissionIndicator: bool | None = None
    chargingId: int | None = Field(None, ge=0, le=UINT32_MAX)
    notifyUri: str | None = Field(None, max_length=2048)
    multipleUnitUsage: list[MultipleUnitUsage] | None = None
    triggers: list[Trigger] | None = None
    pDUSessionChargingInformation: PDUSessionChargingInformation | None = None

    @field_validator("notifyUri")
    @classmethod
    def _uri(cls, v: str | None, info: ValidationInfo) -> str | None:
        # http(s); diameter:// only when the Diameter layer builds the request (Gy).
        return None if v is None else notification_target(v, info.context, "notifyUri")

    @property
    def serving_plmn(self) -> str | None:
        info = self.pDUSessionChargingInformation
        if info and info.pduSessionInformation and info.pduSessionInformation.servingCNPlmnId:
            return info.pduSessionInformation.servingCNPlmnId.plmn
        return None

    @property
    def consumer_plmn(self) -> str | None:
        p = self.nfConsumerIdentification.nFPLMNID
        return p.plmn if p else None

    @property
    def pdu_session_id(self) -> int | None:
        info = self.pDUSessionChargingInformation
        if info and info.pduSessionInformation:
            return info.pduSessionInformation.pduSessionID
        return None

    @property
    def charging_id(self) -> int | None:
        if self.chargingId is not None:
            return self.chargingId
        info = self.pDUSessionChargingInformation
        return info.chargingId if info else None


def timestamp(t: datetime) -> str:
    """RFC 3339 with milliseconds and ``Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _unit(u: UnitAnswer) -> dict[str, Any]:
    out: dict[str, Any] = {"ratingGroup": u.rating_group, "resultCode": u.result}
    if u.granted is not None:
        out["grantedUnit"] = {"totalVolume": u.granted}
        if u.validity_time_s:
            out["validityTime"] = u.validity_time_s
        if u.volume_quota_threshold is not None:
            out["volumeQuotaThreshold"] = u.volume_quota_threshold
        if u.quota_holding_time_s:
            out["quotaHoldingTime"] = u.quota_holding_time_s
    if u.final_action is not None:
        fui: dict[str, Any] = {"finalUnitAction": u.final_action}
        if u.final_action == "REDIRECT" and u.redirect_url:
            fui["redirectServer"] = {"redirectAddressType": "URL",
                                     "redirectServerAddress": u.redirect_url}
        out["finalUnitIndication"] = fui
    return out


def render_answer(a: Answer, now: datetime) -> dict[str, Any]:
    """A ``ChargingDataResponse``."""
    body: dict[str, Any] = {"invocationTimeStamp": timestamp(now),
                            "invocationSequenceNumber": a.invocation_sequence_number}
    if a.units:
        body["multipleUnitInformation"] = [_unit(u) for u in a.units]
    if a.refusal is not None:
        body["invocationResult"] = render_invocation_result(a.refusal)
    return body


def render_invocation_result(r: Refusal) -> dict[str, Any]:
    return {"error": {"status": r.status, "cause": r.cause, "title": r.title,
                      "detail": r.detail},
            "failureHandling": "TERMINATE"}


def reauthorization(rating_groups: list[int]) -> dict[str, Any]:
    """A ``ChargingNotifyRequest`` asking the SMF to come back for quota."""
    body: dict[str, Any] = {"notificationType": "REAUTHORIZATION"}
    if rating_groups:
        body["reauthorizationDetails"] = [{"ratingGroup": rg} for rg in rating_groups]
    return body


def abort_charging() -> dict[str, Any]:
    return {"notificationType": "ABORT_CHARGING"}
