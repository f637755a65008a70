"""Offers for one shopper: history -> rules -> ranking -> coupon -> recorded and ingested."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.errors import NotFound, Unprocessable
from service.identity.service import resolve_shopper_ids
from service.offers.models import Coupon, Offer, OfferImpression
from service.offers.ranking import (
    HistoryEvent,
    Item,
    ItemStats,
    build_profile,
    rank,
)
from service.offers.rules import (
    open_support_issues,
    preferred_channel,
    row_skus,
    touch_from_row,
    unfinished_purchases,
)
from service.offers.stats import StatsCache
from service.touchpoints import events as ev
from service.touchpoints.events import Who
from service.touchpoints.models import Event
from service.touchpoints.service import Ingestor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfferPolicy:
    """The settings the offer rules apply (frequency cap, coupon timing)."""

    frequency_cap: int = 5
    frequency_window_hours: float = 24.0
    coupon_after_hours: float = 24.0
    coupon_valid_hours: float = 72.0


@dataclass
class OffersRuntime:
    """What the offers feature keeps per app: its policy, the ingest path, caches, items."""

    policy: OfferPolicy
    ingest: Ingestor
    stats: StatsCache
    items: Callable[[], Mapping[str, Item]]


COUPON_DISCOUNT_PERCENT = 10
HISTORY_LOOKBACK = timedelta(days=365)


def _history(session: Session, ids: list[str], now: datetime) -> list[Any]:
    return list(
        session.execute(
            select(
                Event.event,
                Event.timestamp,
                Event.channel,
                Event.sku,
                Event.shade,
                Event.variant,
                Event.dwell_ms,
                Event.properties,
            )
            .where(Event.shopper_id.in_(ids), Event.timestamp >= now - HISTORY_LOOKBACK)
            .order_by(Event.timestamp, Event.id)
        )
    )


def _face_width(rows: list[Any]) -> float | None:
    """Latest consented face width (the ingest path drops it when consent is false)."""
    for r in reversed(rows):
        v = (r.properties or {}).get("face_width_mm")
        if isinstance(v, int | float) and 80 <= v <= 200:
            return float(v)
    return None


def _empty(
    shopper_id: str, channel: str, delivery: str | None, reason: str, **extra: Any
) -> dict[str, Any]:
    return {
        "shopper_id": shopper_id,
        "channel": channel,
        "delivery_channel": delivery,
        "offers": [],
        "reason": reason,
        **extra,
    }


def get_offers(
    session: Session,
    policy: OfferPolicy,
    ingest: Ingestor,
    items: Mapping[str, Item],
    stats_cache: StatsCache,
    shopper_id: str,
    *,
    channel: str | None = None,
    limit: int = 5,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    ids = resolve_shopper_ids(session, shopper_id)
    rows = _history(session, ids, now)
    touches = [t for r in rows for t in touch_from_row(r)]
    delivery = preferred_channel(touches)
    channel = channel or delivery or "web"

    issues = open_support_issues(touches)
    if issues:  # service first: no promotion at all while an issue is open
        return _empty(shopper_id, channel, delivery, "open_support_issue", open_issues=issues)

    window_start = now - timedelta(hours=policy.frequency_window_hours)
    shown = (
        session.scalar(
            select(func.count())
            .select_from(OfferImpression)
            .where(
                OfferImpression.shopper_id.in_(ids),
                OfferImpression.channel == channel,
                OfferImpression.shown_at >= window_start,
            )
        )
        or 0
    )
    if shown >= policy.frequency_cap:
        return _empty(
            shopper_id,
            channel,
            delivery,
            "frequency_cap",
            cap={
                "limit": policy.frequency_cap,
                "shown": shown,
                "window_hours": policy.frequency_window_hours,
            },
        )

    history = [
        HistoryEvent(r.event, sku, r.variant, r.dwell_ms, r.timestamp)
        for r in rows
        for sku in row_skus(r)
    ]
    profile = build_profile(history, _face_width(rows))
    ranked = rank(profile, items, stats_cache.get(session, now), limit=limit)
    coupon = _coupon(session, policy, ids, touches, items, now)
    if coupon is not None and ranked and coupon.sku not in {r.sku for r in ranked}:
        # The unfinished product is what the coupon is for: it takes the last slot.
        extra = rank(profile, {coupon.sku: items[coupon.sku]}, ItemStats(), limit=1)
        ranked = [*ranked[: max(limit - 1, 0)], *extra]
    if not ranked:
        return _empty(shopper_id, channel, delivery, "no_products")

    impression = OfferImpression(
        id=uuid.uuid4().hex, shopper_id=shopper_id, channel=channel, shown_at=now
    )
    session.add(impression)
    session.flush()
    offers, events = [], []
    for pos, r in enumerate(ranked, start=1):
        item = items[r.sku]
        own_coupon = coupon if coupon is not None and coupon.sku == r.sku else None
        reasons = list(r.reasons)
        if own_coupon is not None:
            reasons.insert(
                0, f"{own_coupon.discount_percent}% off to finish your purchase of {item.name}"
            )
        oid = uuid.uuid4().hex
        session.add(
            Offer(
                id=oid,
                impression_id=impression.id,
                shopper_id=shopper_id,
                sku=r.sku,
                rank=pos,
                score=r.score,
                reasons=reasons,
                coupon_code=own_coupon.code if own_coupon is not None else None,
            )
        )
        offers.append(
            {
                "offer_id": oid,
                "rank": pos,
                "sku": r.sku,
                "name": item.name,
                "kind": item.kind,
                "price": item.price,
                "currency": item.currency,
                "score": round(r.score, 4),
                "reason": reasons[0],
                "reasons": reasons,
                "coupon": _coupon_dict(own_coupon) if own_coupon is not None else None,
            }
        )
        events.append(
            ev.offer_shown(
                Who(anonymous_id=shopper_id, channel=channel),
                oid,
                r.sku,
                pos,
                own_coupon.code if own_coupon is not None else None,
                message_id=f"offer-shown-{oid}",
                timestamp=now,
            )
        )
    res = ingest(session, events, source="offers", now=now)
    if res.rejected:  # a bug, not bad input: our own events must always be valid
        raise RuntimeError(f"Offer Shown events rejected: {res.results[0].error}")
    return {
        "shopper_id": shopper_id,
        "channel": channel,
        "delivery_channel": delivery,
        "offers": offers,
        "reason": None,
        "impression_id": impression.id,
    }


def _coupon(
    session: Session,
    policy: OfferPolicy,
    ids: list[str],
    touches: list[Any],
    items: Mapping[str, Item],
    now: datetime,
) -> Coupon | None:
    """The shopper's live coupon, or a new one for their newest unfinished purchase.

    Once per shopper and product, ever (a unique constraint backs that up); it expires after
    coupon_valid_hours and is then never re-issued for that product.
    """
    existing = list(session.scalars(select(Coupon).where(Coupon.shopper_id.in_(ids))))
    live = [c for c in existing if c.expires_at > now]
    if live:
        return max(live, key=lambda c: c.issued_at)
    given = {c.sku for c in existing}
    for u in unfinished_purchases(touches, now, policy.coupon_after_hours):
        if u.sku in given or u.sku not in items:
            continue
        c = Coupon(
            code=secrets.token_hex(6).upper(),
            shopper_id=ids[0],
            sku=u.sku,
            discount_percent=COUPON_DISCOUNT_PERCENT,
            reason="unfinished_cart" if u.carted else "unfinished_try_on",
            issued_at=now,
            expires_at=now + timedelta(hours=policy.coupon_valid_hours),
            details={"last_touch": u.last_touch.isoformat()},
        )
        session.add(c)
        session.flush()
        return c
    return None


def _coupon_dict(c: Coupon) -> dict[str, Any]:
    return {
        "code": c.code,
        "discount_percent": c.discount_percent,
        "reason": c.reason,
        "expires_at": c.expires_at.isoformat(),
    }


def record_feedback(
    session: Session,
    ingest: Ingestor,
    shopper_id: str,
    offer_id: str,
    action: Literal["accepted", "rejected"],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Store the shopper's answer and log it as an Offer Accepted/Rejected event (ingest)."""
    if action not in ("accepted", "rejected"):
        raise Unprocessable("action must be 'accepted' or 'rejected'")
    now = now or datetime.now(UTC)
    ids = resolve_shopper_ids(session, shopper_id)
    offer = session.get(Offer, offer_id)
    if offer is None or offer.shopper_id not in ids:
        raise NotFound(f"no offer {offer_id!r} for this shopper")
    if offer.feedback == action:  # a retried POST: already recorded and logged
        return {
            "offer_id": offer_id,
            "sku": offer.sku,
            "feedback": action,
            "logged": False,
            "duplicate": True,
        }
    offer.feedback, offer.feedback_at = action, now
    channel = (
        session.scalar(
            select(OfferImpression.channel).where(OfferImpression.id == offer.impression_id)
        )
        or "web"
    )
    event = ev.offer_feedback(
        Who(anonymous_id=shopper_id, channel=channel),
        action,
        offer_id,
        offer.sku,
        offer.coupon_code,
        message_id=f"offer-{action[:3]}-{offer_id}-{uuid.uuid4().hex[:8]}",
        timestamp=now,
    )
    res = ingest(session, [event], source="offers", now=now)
    return {
        "offer_id": offer_id,
        "sku": offer.sku,
        "feedback": action,
        "logged": res.inserted == 1,
        "duplicate": res.duplicates == 1,
    }
