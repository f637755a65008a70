"""Offers' part of erasure and retention: its rows about a shopper, and rows past the window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db.dml import affected
from service.offers.models import Coupon, Offer, OfferImpression


def erase_shopper_offers(session: Session, shopper_ids: Sequence[str]) -> dict[str, int]:
    """Delete every offers row derived from these shoppers (erasure hook)."""
    counts: dict[str, int] = {}
    for model in (Offer, OfferImpression, Coupon):
        res = affected(session, delete(model).where(model.shopper_id.in_(shopper_ids)))
        counts[model.__tablename__] = res or 0
    return counts


def purge_offers(session: Session, cutoff: datetime, _now: datetime) -> dict[str, int]:
    """Offers shown, and coupons issued, before the retention cutoff."""
    old = select(OfferImpression.id).where(OfferImpression.shown_at < cutoff).scalar_subquery()
    offers = affected(session, delete(Offer).where(Offer.impression_id.in_(old)))
    shown = affected(session, delete(OfferImpression).where(OfferImpression.shown_at < cutoff))
    coupons = affected(session, delete(Coupon).where(Coupon.issued_at < cutoff))
    return {"offers": offers or 0, "offer_impressions": shown or 0, "coupons": coupons or 0}
