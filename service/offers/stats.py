"""Cross-shopper item statistics for offers (popularity, co-try-on), cached per process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, union
from sqlalchemy.orm import Session, aliased

from service.analytics.sql import order_lines
from service.offers.ranking import ORDER_EVENT, TRY_ON_EVENTS, ItemStats
from service.touchpoints.models import Event

log = logging.getLogger(__name__)

STATS_LOOKBACK = timedelta(days=90)
DEFAULT_STATS_TTL_S = 300.0


class StatsCache:
    """Cross-shopper item statistics, recomputed at most every ttl_s seconds per process.

    They are aggregates over every shopper (popularity, co-try-on counts), so they change
    slowly; caching them keeps one offers request to a couple of indexed lookups. Once a
    value exists, a stale one is still served while a background thread recomputes it, so
    no request waits for the (seconds-long, at a million events) aggregation. ttl_s=0
    recomputes on every call, synchronously (tests).
    """

    def __init__(
        self, ttl_s: float = DEFAULT_STATS_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
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
            value, fresh = self._value, self._clock() - self._at < self.ttl_s
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
            self._value, self._at = value, self._clock()
        return value

    def _refresh(self, engine: Any, now: datetime) -> None:
        try:
            with Session(engine) as session:
                value = compute_item_stats(session, now - STATS_LOOKBACK)
            with self._lock:
                self._value, self._at = value, self._clock()
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
    # Typed statements: subquery columns carry no Python type of their own.
    by_sku: Select[str, int] = select(tried.c.sku, func.count()).group_by(tried.c.sku)
    stats.tried_by = {s: n for s, n in session.execute(by_sku)}
    b = aliased(tried)
    co_tried: Select[str, str, int] = (
        select(tried.c.sku, b.c.sku, func.count())
        .join(b, (b.c.shopper_id == tried.c.shopper_id) & (b.c.sku != tried.c.sku))
        .group_by(tried.c.sku, b.c.sku)
    )
    stats.co_tried = {(x, y): n for x, y, n in session.execute(co_tried)}
    chose: Select[str, str, int] = (
        select(tried.c.sku, ordered.c.sku, func.count())
        .join(
            ordered,
            (ordered.c.shopper_id == tried.c.shopper_id) & (ordered.c.sku != tried.c.sku),
        )
        .group_by(tried.c.sku, ordered.c.sku)
    )
    stats.chose = {(x, y): n for x, y, n in session.execute(chose)}
    pop = {s: float(n) for s, n in stats.tried_by.items()}
    orders: Select[str, int] = select(ordered.c.sku, func.count()).group_by(ordered.c.sku)
    for s, n in session.execute(orders):
        pop[s] = pop.get(s, 0.0) + 3.0 * n  # an order says more than a try-on
    stats.popularity = pop
    return stats
