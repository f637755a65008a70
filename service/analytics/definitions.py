"""What the analytics numbers mean: event names, filters, group-by dimensions, thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from service.touchpoints.names import TRY_ON_EVENTS, EventName
from vision.measure import FRAME_FIT_TOLERANCE_MM

__all__ = ["TRY_ON_EVENTS"]

# Event names come from the one vocabulary (service.touchpoints.names).
SHADE_EVENT = EventName.SHADE_APPLIED
DWELL_EVENT = EventName.TRY_ON_DWELL
CART_EVENT = EventName.PRODUCT_ADDED
ORDER_EVENT = EventName.ORDER_COMPLETED
FEEDBACK_EVENT = EventName.FEEDBACK_SUBMITTED

# NPS: promoters answer 9-10, detractors 0-6; NPS = %promoters - %detractors (-100..100).
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6

# Fit: vision.measure.frame_fits, the one rule: a frame fits a face when its total width is
# within this many mm of the width vision's fit advice recommends for that face
# (vision.measure.ideal_frame_width_mm = 0.9 x face width).
FIT_TOLERANCE_MM = FRAME_FIT_TOLERANCE_MM
FIT_BIN_MM = 2.0
# A fit-gap suggests a frame width only from at least this many shoppers (the setting
# TRYON_FIT_GAP_MIN_SHOPPERS overrides it for the endpoint).
FIT_GAP_MIN_SHOPPERS = 20

DEFAULT_CONVERSION_WINDOW_HOURS = 72.0

# Monk Skin Tone index (1-10) bands used when a client sends monk_index but no band.
MONK_BANDS: tuple[tuple[int, int, str], ...] = (
    (1, 3, "MST 1-3"),
    (4, 7, "MST 4-7"),
    (8, 10, "MST 8-10"),
)
UNKNOWN_BAND = "unknown"
# A sent skin_tone_band counts only as a JSON string of at most this many characters (it is
# a rollup key); anything else falls through to monk_index, then "unknown".
MAX_BAND_CHARS = 64


def skin_tone_band(properties: dict[str, Any]) -> str:
    """The skin-tone band of one Shade Applied event (the SQL in sql.skin_band matches it).

    properties.skin_tone_band when it is a string (<= MAX_BAND_CHARS); else from a numeric
    properties.monk_index, truncated to an integer (MST 1-3, 4-7, 8-10); else "unknown".
    """
    band = properties.get("skin_tone_band")
    if isinstance(band, str) and len(band) <= MAX_BAND_CHARS:
        return band
    monk = properties.get("monk_index")
    if isinstance(monk, int | float) and not isinstance(monk, bool):
        for lo, hi, label in MONK_BANDS:
            # [lo, hi + 1): the same as lo <= int(monk) <= hi, without a dialect-specific cast.
            if lo <= monk < hi + 1:
                return label
    return UNKNOWN_BAND


Dimension = Literal["variant", "channel", "store", "day"]
DIMENSIONS: tuple[str, ...] = ("variant", "channel", "store", "day")


ProductType = Literal["glasses", "lipstick"]
PRODUCT_TYPES: tuple[str, ...] = ("glasses", "lipstick")


@dataclass(frozen=True)
class Filters:
    """Half-open time range [start, end) on the event timestamp, plus channel and store.

    product_type: glasses = events without a shade (Frame Applied and glasses dwell),
    lipstick = events with one (Shade Applied, lipstick dwell). It narrows the product
    reports (products, funnel cohorts, shades), not NPS or the fit-gap.
    """

    start: datetime | None = None
    end: datetime | None = None
    channel: str | None = None
    store_id: str | None = None
    product_type: ProductType | None = None


def _money_number(v: Any) -> Decimal | None:
    return Decimal(str(v)) if isinstance(v, int | float) and not isinstance(v, bool) else None


def line_amount(price: Any, quantity: Any) -> Decimal:
    """Revenue of one order line: price x quantity (a numeric quantity, else 1); a line
    without a numeric price counts 0. sql.order_amount and sql.order_lines are the SQL."""
    p = price if isinstance(price, Decimal) else _money_number(price)
    if p is None:
        return Decimal(0)
    q = _money_number(quantity)
    return p * (q if q is not None else Decimal(1))


def order_line_amounts(sku: str | None, price: Any, props: dict[str, Any]) -> list[Decimal]:
    """An Order Completed's revenue per line, as the funnel counts it.

    Multi-line (no sku column): one amount per `products` line that has a sku. Single sku
    (the sku column): the `price` column x `quantity`; when it has no price, the one
    `products` line of that sku (ingest stores a one-line order's sku in the column).
    """
    lines = props.get("products")
    if sku is None:
        if not isinstance(lines, list):
            return []
        return [
            line_amount(line.get("price"), line.get("quantity"))
            for line in lines
            if isinstance(line, dict) and line.get("sku") is not None
        ]
    if price is not None:
        return [line_amount(price, props.get("quantity"))]
    one = lines[0] if isinstance(lines, list) and len(lines) == 1 else None
    if isinstance(one, dict) and one.get("sku") == sku:
        return [line_amount(one.get("price"), one.get("quantity"))]
    return [Decimal(0)]
