"""Fit-gap report: consented face widths vs catalog frame widths, i.e. which sizes to design."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import String, and_, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from service.analytics.definitions import (
    FIT_BIN_MM,
    FIT_GAP_MIN_SHOPPERS,
    FIT_TOLERANCE_MM,
    Filters,
)
from service.db.base import UTCDateTime
from service.touchpoints.models import Event
from vision.measure import (
    FACE_WIDTH_PLAUSIBLE_MM,
    FRAME_BAND_HALF_MM,
    FRAME_TO_TEMPLE_WIDTH,
    frame_fits,
    ideal_frame_width_mm,
)

# The partial index's predicate, repeated verbatim in the query so the planner can use it.
FACE_WIDTH_PRESENT_PG = "jsonb_typeof(events.properties -> 'face_width_mm') = 'number'"
FACE_WIDTH_PRESENT_SQLITE = "json_type(events.properties, '$.face_width_mm') IN ('real', 'integer')"


@dataclass(frozen=True)
class Frame:
    sku: str
    frame_width_mm: float


def consented_face_widths(session: Session, f: Filters) -> np.ndarray:
    """One face width per shopper (their mean), from events that carry properties.face_width_mm.

    The ingest path keeps face measurements only when the event says consent is true, so a
    present value is a consented one. Aggregated per shopper in SQL: only one number per
    shopper comes back, however many events they sent.
    """
    # Literal JSON paths (no bound parameters) so the planner can match the partial index
    # ix_events_face_width from migration 0003_analytics: only events carrying a width are read.
    if session.get_bind().dialect.name == "postgresql":
        width: ColumnElement[Any] = literal_column(
            "(events.properties ->> 'face_width_mm')::float8"
        )
        present: ColumnElement[Any] = literal_column(FACE_WIDTH_PRESENT_PG)
    else:
        width = literal_column("json_extract(events.properties, '$.face_width_mm')")
        present = literal_column(FACE_WIDTH_PRESENT_SQLITE)
    # On SQLite a unary "+" keeps the planner off the timestamp/channel indexes: the partial
    # index holds only the measured events, which beats any range over all events.
    pg = session.get_bind().dialect.name == "postgresql"
    ts = Event.timestamp if pg else literal_column("+events.timestamp", UTCDateTime)
    ch = Event.channel if pg else literal_column("+events.channel", String)
    conds = [present]
    if f.start is not None:
        conds.append(ts >= f.start)
    if f.end is not None:
        conds.append(ts < f.end)
    if f.channel:
        conds.append(ch == f.channel)
    if f.store_id:
        conds.append(Event.store_id == f.store_id)
    mean_width: ColumnElement[float | None] = func.avg(width)
    stmt = select(mean_width).select_from(Event).where(and_(*conds)).group_by(Event.shopper_id)
    return plausible_widths(session.scalars(stmt))


def plausible_widths(means: Iterable[Any]) -> np.ndarray:
    """Per-shopper mean widths inside vision's plausible adult range
    (vision.measure.FACE_WIDTH_PLAUSIBLE_MM): unit mistakes and broken measurements would
    only add noise bins (the stream stores only measurements flagged reliable, which are
    inside it already)."""
    # Rounded to 1e-6 mm: engines sum floats in different orders, and a mean 1e-14 below a
    # bin edge must not change bins (widths are measured to 0.1 mm).
    lo, hi = FACE_WIDTH_PLAUSIBLE_MM
    vals = [round(float(v), 6) for v in means if v is not None]
    return np.array([v for v in vals if lo <= v <= hi], dtype=float)


Z95 = 1.959963984540054


def median_ci(values: np.ndarray, z: float = Z95) -> tuple[float, float]:
    """A distribution-free ~95% confidence interval of the median (order statistics: the
    ranks n/2 -+ z*sqrt(n)/2, the binomial's normal approximation)."""
    x = np.sort(values)
    n = x.size
    j = max(1, math.floor(n / 2 - z * math.sqrt(n) / 2))
    k = min(n, math.ceil(n / 2 + 1 + z * math.sqrt(n) / 2))
    return float(x[j - 1]), float(x[k - 1])


def wilson_ci(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score ~95% interval of a proportion (None without observations)."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def fit_gap(
    widths: np.ndarray,
    frames: Sequence[Frame],
    *,
    tolerance_mm: float = FIT_TOLERANCE_MM,
    bin_mm: float = FIT_BIN_MM,
    min_shoppers: int = FIT_GAP_MIN_SHOPPERS,
) -> dict[str, Any]:
    """Histogram of face widths with, per bin, the frames that fit its centre, and the gaps.

    "Fits" is vision.measure.frame_fits, the rule the shopper's fit advice uses: the frame's
    total width lies in frame_band_mm(face width) = 0.9 x face width -+ 4 mm, widened by
    `tolerance_mm` - 4 mm when a wider tolerance is asked for. A gap is a bin (of face
    widths) that holds shoppers but has no fitting frame; neighbouring gap bins are merged.
    A merged gap is a recommendation only with at least `min_shoppers` shoppers in it: it
    then suggests the ideal frame width of its median face, with a ~95% confidence interval
    (order statistics of the median, scaled like the width); below that it is reported with
    its sample size and no suggestion.
    """
    fw = np.array([fr.frame_width_mm for fr in frames], dtype=float)
    result: dict[str, Any] = {
        "tolerance_mm": tolerance_mm,
        "bin_mm": bin_mm,
        "min_shoppers": min_shoppers,
        "shoppers": int(widths.size),
        "frames": [
            {
                "sku": fr.sku,
                "frame_width_mm": fr.frame_width_mm,
                # where the frame sits on the face-width axis: the face it is ideal for
                "suits_face_width_mm": round(fr.frame_width_mm / FRAME_TO_TEMPLE_WIDTH, 1),
            }
            for fr in frames
        ],
        "fit_definition": (
            f"vision.measure.frame_fits: a frame fits when {FRAME_TO_TEMPLE_WIDTH:g} x face width"
            f" - {tolerance_mm:g} mm <= frame width <= {FRAME_TO_TEMPLE_WIDTH:g} x face width"
            f" + {tolerance_mm:g} mm (the fit advice's band is -+ {FRAME_BAND_HALF_MM:g} mm)"
        ),
        "bins": [],
        "gaps": [],
        "recommendations": 0,
        "shoppers_without_fit": 0,
        "share_without_fit": None,
        "share_without_fit_ci95": None,
    }
    if widths.size == 0:
        return result

    def fits(frame_mm: float, face_mm: float) -> bool:
        return frame_fits(frame_mm, face_mm, tolerance_mm)

    fits_any = np.array([any(fits(f, float(w)) for f in fw) for w in widths], dtype=bool)
    without = int((~fits_any).sum())
    result["shoppers_without_fit"] = without
    result["share_without_fit"] = float((~fits_any).mean())
    result["share_without_fit_ci95"] = wilson_ci(without, int(widths.size))
    lo = math.floor(widths.min() / bin_mm) * bin_mm
    idx = np.floor((widths - lo) / bin_mm).astype(int)
    bins = []
    for b in range(int(idx.max()) + 1):
        in_bin = idx == b
        left = lo + b * bin_mm
        centre = left + bin_mm / 2
        fitting = [fr.sku for fr in frames if fits(fr.frame_width_mm, centre)]
        bins.append(
            {
                "lo_mm": left,
                "hi_mm": left + bin_mm,
                "shoppers": int(in_bin.sum()),
                "shoppers_without_fit": int((in_bin & ~fits_any).sum()),
                "fitting_frames": len(fitting),
                "fitting_skus": fitting,
                "gap": bool(in_bin.any()) and not fitting,
            }
        )
    result["bins"] = bins
    run: list[int] = []
    for b, row in enumerate([*bins, {"gap": False}]):
        if row["gap"]:
            run.append(b)
            continue
        if run:
            members = widths[np.isin(idx, run)]
            enough = int(members.size) >= min_shoppers
            ci = median_ci(members)
            result["gaps"].append(
                {
                    "from_mm": bins[run[0]]["lo_mm"],
                    "to_mm": bins[run[-1]]["hi_mm"],
                    "shoppers": int(members.size),
                    "face_width_median_mm": round(float(np.median(members)), 1),
                    "recommended": enough,
                    "suggested_frame_width_mm": (
                        round(float(ideal_frame_width_mm(float(np.median(members)))), 1)
                        if enough
                        else None
                    ),
                    "suggested_frame_width_ci95_mm": (
                        [round(float(ideal_frame_width_mm(c)), 1) for c in ci] if enough else None
                    ),
                    "reason": None if enough else f"fewer than {min_shoppers} shoppers",
                }
            )
            run = []
    result["gaps"].sort(key=lambda g: -g["shoppers"])
    result["recommendations"] = sum(1 for g in result["gaps"] if g["recommended"])
    return result
