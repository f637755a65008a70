"""Offer rules over one shopper's history: support suppression, coupons, channel preference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.offers.ranking import CART_EVENT, ORDER_EVENT, TRY_ON_EVENTS
from service.touchpoints.names import OFFER_EVENTS, EventName

SUPPORT_OPENED = EventName.SUPPORT_ISSUE_OPENED
SUPPORT_RESOLVED = EventName.SUPPORT_ISSUE_RESOLVED
# Try-ons older than this no longer make a purchase "unfinished" (no coupon for last year's look).
UNFINISHED_LOOKBACK = timedelta(days=30)


@dataclass(frozen=True)
class Touch:
    """One of the shopper's events, as the rules need it (oldest first in every list)."""

    event: str
    timestamp: datetime
    channel: str
    sku: str | None = None
    issue_id: str | None = None


def open_support_issues(history: Sequence[Touch]) -> list[str]:
    """Issue ids whose latest "Opened" has no "Resolved" at or after it.

    The event schema requires issue_id on both events, so they pair up by id; a Resolved
    without an id (older clients) resolves every issue opened before it.
    """
    opened: dict[str, datetime] = {}
    for t in history:
        if t.event == SUPPORT_OPENED:
            opened[t.issue_id or ""] = t.timestamp
        elif t.event == SUPPORT_RESOLVED:
            for key in [t.issue_id] if t.issue_id else list(opened):
                if key in opened and opened[key] <= t.timestamp:
                    del opened[key]
    return sorted(opened)


def preferred_channel(history: Sequence[Touch]) -> str | None:
    """The channel the shopper uses most (their own touchpoints, not our offer events);
    ties go to the one used most recently."""
    counts: Counter[str] = Counter()
    last: dict[str, datetime] = {}
    for t in history:
        if t.event in OFFER_EVENTS:
            continue
        counts[t.channel] += 1
        last[t.channel] = t.timestamp
    if not counts:
        return None
    return max(counts, key=lambda c: (counts[c], last[c]))


@dataclass(frozen=True)
class Unfinished:
    sku: str
    last_touch: datetime
    carted: bool


def unfinished_purchases(
    history: Sequence[Touch], now: datetime, after_hours: float
) -> list[Unfinished]:
    """Products tried or carted, not ordered since, whose last try/cart is >= after_hours old.

    Most recent first, carted ones before merely tried ones.
    """
    last: dict[str, datetime] = {}
    carted: set[str] = set()
    for t in history:
        if not t.sku:
            continue
        if t.event in TRY_ON_EVENTS or t.event == CART_EVENT:
            last[t.sku] = t.timestamp
            if t.event == CART_EVENT:
                carted.add(t.sku)
        elif t.event == ORDER_EVENT:
            last.pop(t.sku, None)
            carted.discard(t.sku)
    due = now - timedelta(hours=after_hours)
    out = [
        Unfinished(s, ts, s in carted)
        for s, ts in last.items()
        if now - UNFINISHED_LOOKBACK <= ts <= due
    ]
    out.sort(key=lambda u: (not u.carted, -u.last_touch.timestamp()))
    return out


def row_skus(row: Any) -> list[str | None]:
    """The item(s) an event is about: its sku or shade; for a multi-line order (no sku
    column), every line's sku."""
    if row.sku or row.shade:
        return [row.sku or row.shade]
    props = row.properties if isinstance(row.properties, dict) else {}
    if row.event == ORDER_EVENT and isinstance(props.get("products"), list):
        lines = [p.get("sku") for p in props["products"] if isinstance(p, dict) and p.get("sku")]
        if lines:
            return lines
    return [None]


def touch_from_row(row: Any) -> list[Touch]:
    props = row.properties if isinstance(row.properties, dict) else {}
    issue = props.get("issue_id")
    return [Touch(row.event, row.timestamp, row.channel, sku, issue) for sku in row_skus(row)]
