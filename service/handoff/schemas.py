"""Request and response models of the hand-off routes (mint, claim)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

ShopperId = Annotated[
    str,
    Field(
        min_length=1, max_length=128, validation_alias=AliasChoices("anonymous_id", "anonymousId")
    ),
]


class MintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anonymous_id: ShopperId
    store_id: Annotated[str, Field(max_length=64)] | None = None
    kiosk_id: Annotated[str, Field(max_length=64)] | None = None


class MintOut(BaseModel):
    token: str
    expires_at: datetime
    url: str = Field(description="What the phone opens (encode it as the QR code).")
    qr_url: str


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anonymous_id: ShopperId


class ClaimOut(BaseModel):
    shopper_id: str
    claimed_by: str
    linked_ids: list[str]
