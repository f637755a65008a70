"""What the analytics numbers mean: event names, filters, group-by dimensions, thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from vision.measure import FRAME_FIT_TOLERANCE_MM

# A try-on of a product: the overlay of this sku (and variant) was drawn on the shopper's
# face. "Try-On Started" marks the session (and repeats the first sku), so it is not counted.
TRY_ON_EVENTS: tuple[str, ...] = ("Frame Applied", "Shade Applied")
SHADE_EVENT = "Shade Applied"
DWELL_EVENT = "Try-On Dwell"
CART_EVENT = "Product Added"
ORDER_EVENT = "Order Completed"
FEEDBACK_EVENT = "Feedback Submitted"

# NPS: promoters answer 9-10, detractors 0-6; NPS = %promoters - %detractors (-100..100).
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6

# Fit: a frame fits a face when its total width is within this many mm of the width vision's
# fit advice recommends for that face (vision.measure.ideal_frame_width_mm).
FIT_TOLERANCE_MM = FRAME_FIT_TOLERANCE_MM
FIT_BIN_MM = 2.0

DEFAULT_CONVERSION_WINDOW_HOURS = 72.0

# Monk Skin Tone index (1-10) bands used when a client sends monk_index but no band.
MONK_BANDS: tuple[tuple[int, int, str], ...] = (
    (1, 3, "MST 1-3"),
    (4, 7, "MST 4-7"),
    (8, 10, "MST 8-10"),
)

Dimension = Literal["variant", "channel", "store", "day"]
DIMENSIONS: tuple[str, ...] = ("variant", "channel", "store", "day")


@dataclass(frozen=True)
class Filters:
    """Half-open time range [start, end) on the event timestamp, plus channel and store."""

    start: datetime | None = None
    end: datetime | None = None
    channel: str | None = None
    store_id: str | None = None
