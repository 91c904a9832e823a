"""The one pattern every settings section follows: a frozen pydantic model that refuses
unknown keys (a typo in the configuration file is an error, not a silent default)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
