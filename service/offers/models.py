"""Tables owned by offers: impressions (what was shown, for the frequency cap), offers, coupons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class OfferImpression(Base):
    """One non-empty offers response to one shopper on one channel (counted by the cap)."""

    __tablename__ = "offer_impressions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    shopper_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32))
    shown_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_offer_impressions_shopper_channel_shown", "shopper_id", "channel", "shown_at"),
    )


class Offer(Base):
    """One ranked product inside an impression; feedback is recorded on it."""

    __tablename__ = "offers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    impression_id: Mapped[str] = mapped_column(
        ForeignKey("offer_impressions.id", ondelete="CASCADE"), index=True
    )
    shopper_id: Mapped[str] = mapped_column(String(128), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    coupon_code: Mapped[str | None] = mapped_column(String(32))
    feedback: Mapped[str | None] = mapped_column(String(16))
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Coupon(Base):
    """A coupon for an unfinished purchase: at most one per shopper and product, ever."""

    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    shopper_id: Mapped[str] = mapped_column(String(128), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    discount_percent: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (UniqueConstraint("shopper_id", "sku"),)
