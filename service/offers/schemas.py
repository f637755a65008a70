"""Request and response models of the offers routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class FeedbackIn(BaseModel):
    action: Literal["accepted", "rejected"]


class CouponOut(BaseModel):
    code: str
    discount_percent: int
    reason: str = Field(description="unfinished_cart | unfinished_try_on")
    expires_at: str = Field(description="ISO 8601")


class OfferOut(BaseModel):
    offer_id: str
    rank: int
    sku: str
    name: str
    kind: str
    price: float | None
    currency: str | None
    score: float
    reason: str = Field(description="The first of `reasons`, as a sentence.")
    reasons: list[str]
    coupon: CouponOut | None


class FrequencyCapOut(BaseModel):
    limit: int
    shown: int
    window_hours: float


class OffersOut(BaseModel):
    shopper_id: str
    channel: str | None
    delivery_channel: str | None
    offers: list[OfferOut]
    reason: str | None = Field(
        description="Why there are no offers (open_support_issue, frequency_cap, no_products)"
    )
    impression_id: str | None = Field(default=None, description="only when offers were shown")
    open_issues: list[str] | None = Field(default=None, description="with open_support_issue")
    cap: FrequencyCapOut | None = Field(default=None, description="with frequency_cap")


class FeedbackOut(BaseModel):
    offer_id: str
    sku: str
    feedback: Literal["accepted", "rejected"]
    logged: bool = Field(description="an Offer Accepted/Rejected event was stored")
    duplicate: bool
