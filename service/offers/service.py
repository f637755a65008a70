"""Offers for one shopper: history -> rules -> ranking -> coupon -> recorded and ingested."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select, union
from sqlalchemy.orm import Session, aliased

from service.analytics.sql import order_lines
from service.db.models import Event
from service.errors import NotFound, Unprocessable
from service.offers.models import Coupon, Offer, OfferImpression
from service.offers.ranking import (
    ORDER_EVENT,
    TRY_ON_EVENTS,
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
from service.touchpoints import ingest
from service.touchpoints.identity import resolve_shopper_ids

log = logging.getLogger(__name__)

COUPON_DISCOUNT_PERCENT = 10
STATS_LOOKBACK = timedelta(days=90)
HISTORY_LOOKBACK = timedelta(days=365)
DEFAULT_STATS_TTL_S = 300.0


class StatsCache:
    """Cross-shopper item statistics, recomputed at most every ttl_s seconds per process.

    They are aggregates over every shopper (popularity, co-try-on counts), so they change
    slowly; caching them keeps one offers request to a couple of indexed lookups. Once a
    value exists, a stale one is still served while a background thread recomputes it, so
    no request waits for the (seconds-long, at a million events) aggregation. ttl_s=0
    recomputes on every call, synchronously (tests).
    """

    def __init__(self, ttl_s: float = DEFAULT_STATS_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: ItemStats | None = None
        self._at = 0.0
        self._refreshing = False
        self._thread: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background refresh in flight (if any) has finished."""
        if self._thread is not None:
            self._thread.join(timeout)

    def get(self, session: Session, now: datetime) -> ItemStats:
        with self._lock:
            value, fresh = self._value, time.monotonic() - self._at < self.ttl_s
            if value is not None and fresh:
                return value
            background = value is not None and self.ttl_s > 0
            if background and not self._refreshing:
                self._refreshing = True
                engine = session.get_bind()
                self._thread = threading.Thread(
                    target=self._refresh, args=(engine, now), daemon=True, name="offer-stats"
                )
                self._thread.start()
        if background:
            return value  # type: ignore[return-value]
        value = compute_item_stats(session, now - STATS_LOOKBACK)
        with self._lock:
            self._value, self._at = value, time.monotonic()
        return value

    def _refresh(self, engine: Any, now: datetime) -> None:
        try:
            with Session(engine) as session:
                value = compute_item_stats(session, now - STATS_LOOKBACK)
            with self._lock:
                self._value, self._at = value, time.monotonic()
        except Exception:  # keep serving the old value; the next stale read retries
            log.exception("offer stats refresh failed")
        finally:
            with self._lock:
                self._refreshing = False


def compute_item_stats(session: Session, since: datetime) -> ItemStats:
    """Popularity and item-to-item co-occurrence, aggregated in SQL over distinct pairs."""
    item = func.coalesce(Event.sku, Event.shade)
    tried = (
        select(Event.shopper_id.label("shopper_id"), item.label("sku"))
        .where(Event.event.in_(TRY_ON_EVENTS), Event.timestamp >= since, item.is_not(None))
        .distinct()
        .subquery("t")
    )
    lines = order_lines(session, Event.timestamp >= since).subquery("l")
    ordered = union(  # UNION, not UNION ALL: distinct (shopper, sku) pairs
        select(Event.shopper_id.label("shopper_id"), Event.sku.label("sku")).where(
            Event.event == ORDER_EVENT, Event.timestamp >= since, Event.sku.is_not(None)
        ),
        select(lines.c.shopper_id, lines.c.sku),
    ).subquery("o")
    stats = ItemStats()
    stats.tried_by = {
        s: n for s, n in session.execute(select(tried.c.sku, func.count()).group_by(tried.c.sku))
    }
    b = aliased(tried)
    stats.co_tried = {
        (x, y): n
        for x, y, n in session.execute(
            select(tried.c.sku, b.c.sku, func.count())
            .join(b, (b.c.shopper_id == tried.c.shopper_id) & (b.c.sku != tried.c.sku))
            .group_by(tried.c.sku, b.c.sku)
        )
    }
    stats.chose = {
        (x, y): n
        for x, y, n in session.execute(
            select(tried.c.sku, ordered.c.sku, func.count())
            .join(
                ordered,
                (ordered.c.shopper_id == tried.c.shopper_id) & (ordered.c.sku != tried.c.sku),
            )
            .group_by(tried.c.sku, ordered.c.sku)
        )
    }
    pop = {s: float(n) for s, n in stats.tried_by.items()}
    for s, n in session.execute(select(ordered.c.sku, func.count()).group_by(ordered.c.sku)):
        pop[s] = pop.get(s, 0.0) + 3.0 * n  # an order says more than a try-on
    stats.popularity = pop
    return stats


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
    settings: Any,
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

    window_start = now - timedelta(hours=settings.offer_frequency_window_hours)
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
    if shown >= settings.offer_frequency_cap:
        return _empty(
            shopper_id,
            channel,
            delivery,
            "frequency_cap",
            cap={
                "limit": settings.offer_frequency_cap,
                "shown": shown,
                "window_hours": settings.offer_frequency_window_hours,
            },
        )

    history = [
        HistoryEvent(r.event, sku, r.variant, r.dwell_ms, r.timestamp)
        for r in rows
        for sku in row_skus(r)
    ]
    profile = build_profile(history, _face_width(rows))
    ranked = rank(profile, items, stats_cache.get(session, now), limit=limit)
    coupon = _coupon(session, settings, ids, touches, items, now)
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
        with_coupon = coupon is not None and coupon.sku == r.sku
        reasons = list(r.reasons)
        if with_coupon:
            reasons.insert(
                0, f"{coupon.discount_percent}% off to finish your purchase of {item.name}"
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
                coupon_code=coupon.code if with_coupon else None,
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
                "coupon": _coupon_dict(coupon) if with_coupon else None,
            }
        )
        events.append(
            {
                "message_id": f"offer-shown-{oid}",
                "event": "Offer Shown",
                "anonymous_id": shopper_id,
                "channel": channel,
                "timestamp": now.isoformat(),
                "properties": {
                    "offer_id": oid,
                    "sku": r.sku,
                    "rank": pos,
                    **({"coupon": coupon.code} if with_coupon else {}),
                },
            }
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
    settings: Any,
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
    for u in unfinished_purchases(touches, now, settings.coupon_after_hours):
        if u.sku in given or u.sku not in items:
            continue
        c = Coupon(
            code=secrets.token_hex(6).upper(),
            shopper_id=ids[0],
            sku=u.sku,
            discount_percent=COUPON_DISCOUNT_PERCENT,
            reason="unfinished_cart" if u.carted else "unfinished_try_on",
            issued_at=now,
            expires_at=now + timedelta(hours=settings.coupon_valid_hours),
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
    event = {
        "message_id": f"offer-{action[:3]}-{offer_id}-{uuid.uuid4().hex[:8]}",
        "event": f"Offer {action.title()}",
        "anonymous_id": shopper_id,
        "channel": channel,
        "timestamp": now.isoformat(),
        "properties": {
            "offer_id": offer_id,
            "sku": offer.sku,
            **({"coupon": offer.coupon_code} if offer.coupon_code else {}),
        },
    }
    res = ingest(session, [event], source="offers", now=now)
    return {
        "offer_id": offer_id,
        "sku": offer.sku,
        "feedback": action,
        "logged": res.inserted == 1,
        "duplicate": res.duplicates == 1,
    }


def erase_shopper_offers(session: Session, shopper_ids: list[str]) -> dict[str, int]:
    """Delete every offers row derived from these shoppers (erasure hook)."""
    counts = {}
    for model in (Offer, OfferImpression, Coupon):
        res = session.execute(delete(model).where(model.shopper_id.in_(shopper_ids)))
        counts[model.__tablename__] = res.rowcount or 0
    return counts
