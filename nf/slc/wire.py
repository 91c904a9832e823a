"""Wire model of Nchf_SpendingLimitControl v1 (TS 29.594): ``SpendingLimitContext``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nf.notify.port import notification_target


class SpendingLimitContext(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    supi: str | None = Field(None, min_length=1, max_length=64,
                             pattern=r"^(imsi-[0-9]{5,15}|nai-.+|gci-.+|gli-.+|.+)$")
    gpsi: str | None = None
    policy_counter_ids: list[str] | None = Field(None, alias="policyCounterIds",
                                                 min_length=1, max_length=64)
    notif_uri: str | None = Field(None, alias="notifUri", min_length=1, max_length=1024)
    expiry: datetime | None = None
    supported_features: str | None = Field(None, alias="supportedFeatures",
                                           pattern=r"^[A-Fa-f0-9]*$")
    notif_id: str | None = Field(None, alias="notifId", max_length=256)

    @field_validator("notif_uri")
    @classmethod
    def _uri(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else notification_target(v, info.context, "notifUri")

    @field_validator("expiry")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expiry must carry a time zone offset")
        return v
