"""Wire models of Npcf_SMPolicyControl v1 (TS 29.512): what the PCF reads from SMFs.

Only the attributes the PCF uses are modelled and checked; everything else an SMF sends is
kept (``extra="allow"``) so ``GET`` returns the context as received. Responses and
notifications are built as plain dicts by the core.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nf.notify.port import notification_target


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class PlmnIdNid(_Wire):
    mcc: str = Field(pattern=r"^\d{3}$")
    mnc: str = Field(pattern=r"^\d{2,3}$")
    nid: str | None = None

    @property
    def plmn(self) -> str:
        return self.mcc + self.mnc


class Snssai(_Wire):
    sst: int = Field(ge=0, le=255)
    sd: str | None = Field(None, pattern=r"^[A-Fa-f0-9]{6}$")


class Ambr(_Wire):
    uplink: str = Field(pattern=r"^\d+(\.\d+)? (bps|Kbps|Mbps|Gbps|Tbps)$")
    downlink: str = Field(pattern=r"^\d+(\.\d+)? (bps|Kbps|Mbps|Gbps|Tbps)$")


_PDU_TYPES = {"IPV4", "IPV6", "IPV4V6", "UNSTRUCTURED", "ETHERNET"}


class SmPolicyContextData(_Wire):
    supi: str = Field(min_length=1, max_length=64,
                      pattern=r"^(imsi-[0-9]{5,15}|nai-.+|gci-.+|gli-.+|.+)$")
    gpsi: str | None = None
    pdu_session_id: int = Field(alias="pduSessionId", ge=0, le=255)
    pdu_session_type: str = Field(alias="pduSessionType", min_length=1)
    dnn: str = Field(min_length=1, max_length=255)
    notification_uri: str = Field(alias="notificationUri", min_length=1, max_length=1024)
    slice_info: Snssai = Field(alias="sliceInfo")
    serving_network: PlmnIdNid | None = Field(None, alias="servingNetwork")
    subs_sess_ambr: Ambr | None = Field(None, alias="subsSessAmbr")
    smf_id: str | None = Field(None, alias="smfId")
    supp_feat: str | None = Field(None, alias="suppFeat", pattern=r"^[A-Fa-f0-9]*$")

    @field_validator("notification_uri")
    @classmethod
    def _uri(cls, v: str, info: ValidationInfo) -> str:
        return notification_target(v, info.context, "notificationUri")

    @field_validator("pdu_session_type")
    @classmethod
    def _pdu_type(cls, v: str) -> str:
        # The type is extensible on the wire; the PCF needs nothing beyond a known value.
        if v not in _PDU_TYPES:
            raise ValueError(f"pduSessionType must be one of {sorted(_PDU_TYPES)}")
        return v


class SmPolicyUpdateContextData(_Wire):
    rep_policy_ctrl_req_triggers: list[str] | None = Field(
        None, alias="repPolicyCtrlReqTriggers", min_length=1)
    serving_network: PlmnIdNid | None = Field(None, alias="servingNetwork")
    subs_sess_ambr: Ambr | None = Field(None, alias="subsSessAmbr")


class SmPolicyDeleteData(_Wire):
    serving_network: PlmnIdNid | None = Field(None, alias="servingNetwork")


def raw(model: BaseModel) -> dict[str, Any]:
    """The body as received (aliases, extra attributes kept), for storing and ``GET``."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
