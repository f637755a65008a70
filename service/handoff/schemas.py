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


class TriedItem(BaseModel):
    product_type: str = Field(description="glasses | lipstick")
    sku: str
    variant: str | None = None
    shade: str | None = None
    dwell_ms: int = Field(description="server-measured time shown, over the session")
    tried_at: str


class CartItem(BaseModel):
    product_type: str
    sku: str
    variant: str | None = None
    shade: str | None = None
    quantity: int | float | str | None = 1
    price: int | float | str | None = None
    currency: str | None = None
    added_at: str


class ClaimOut(BaseModel):
    shopper_id: str
    claimed_by: str
    linked_ids: list[str]
    shortlist: list[TriedItem] = Field(
        default=[], description="the kiosk session's try-ons (newest first), with dwell"
    )
    cart: list[CartItem] = Field(
        default=[], description="Product Added at the kiosk and not ordered since"
    )
