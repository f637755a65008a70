"""The one fit rule: which frame widths suit a face width, S/M/L size bands, fit advice."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # measure.py builds on these bands; only the type flows back
    from vision.measure import FaceMeasurements

# Frame total width ~ this fraction of the contour width at the temples. The contour points lie
# on the silhouette, a few mm outside the temple skin; 0.9 maps MediaPipe's canonical adult face
# (temple contour 154.9 mm, PD 63.6 mm) to 139 mm, the upper end of the common "medium" size,
# and its own 3D glasses (148 mm) sit 6% above that on the same face.
FRAME_TO_TEMPLE_WIDTH = 0.9
FRAME_BAND_HALF_MM = 4.0
SIZE_BANDS_MM = ((130.0, "S"), (140.0, "M"))  # < 130 S, < 140 M, else L
# The size bands as non-overlapping frame-width ranges [lo, hi) in mm (what a shopper is told).
SIZE_BAND_RANGES_MM: dict[str, tuple[float, float]] = {
    "S": (120.0, 130.0),
    "M": (130.0, 140.0),
    "L": (140.0, 150.0),
}
# A stream's advised size changes only when the ideal frame width is past the band's edge by
# this much (frame-width mm): a still shopper whose estimate wobbles at 140 mm keeps one size.
SIZE_BAND_HYSTERESIS_MM = 2.0
# One definition of "fits", shared by the fit advice, the offers and the fit-gap report.
FRAME_FIT_TOLERANCE_MM = FRAME_BAND_HALF_MM

SizeBand = Literal["S", "M", "L"]
FitVerdict = Literal["good fit", "too narrow", "too wide"]


def ideal_frame_width_mm(face_width_mm: float | np.ndarray) -> float | np.ndarray:
    """The frame total width that suits a face width measured temple to temple (127-356)."""
    return FRAME_TO_TEMPLE_WIDTH * face_width_mm


def frame_band_mm(
    face_width_mm: float, face_width_uncertainty_mm: float = 0.0
) -> tuple[float, float]:
    """The one fit rule: the frame total widths (low, high) that suit a face width.

    Centred on the ideal width; half-width FRAME_BAND_HALF_MM, widened when the face width's
    own uncertainty (scaled like the width) is larger.
    """
    centre = float(ideal_frame_width_mm(face_width_mm))
    half = max(FRAME_BAND_HALF_MM, FRAME_TO_TEMPLE_WIDTH * face_width_uncertainty_mm)
    return centre - half, centre + half


def frame_fits(
    frame_width_mm: float, face_width_mm: float, tolerance_mm: float = FRAME_FIT_TOLERANCE_MM
) -> bool:
    """Whether a frame of this total width fits a face of this width (the band above, for a
    face width alone: offers, analytics, the products filter); `tolerance_mm` widens it."""
    lo, hi = frame_band_mm(face_width_mm)
    extra = tolerance_mm - FRAME_BAND_HALF_MM
    return lo - extra <= float(frame_width_mm) <= hi + extra


@dataclass(frozen=True)
class FitAdvice:
    """Frame-size advice for one measured face, and the verdict on a frame when one is given.

    recommended_frame_width_mm: the (low, high) frame total widths that suit the face.
    frame_width_mm and verdict are None when no glasses product was given.
    """

    size_band: SizeBand
    recommended_frame_width_mm: tuple[float, float]
    reliable: bool
    frame_width_mm: float | None = None
    verdict: FitVerdict | None = None

    def to_dict(self) -> dict[str, object]:
        """The API's JSON shape: frame_width_mm and verdict only when a frame was given.

        size_band_mm is the size's own range (S/M/L never overlap); the recommended range is
        the face's own band, which may straddle two sizes.
        """
        lo, hi = self.recommended_frame_width_mm
        out: dict[str, object] = {
            "size_band": self.size_band,
            "size_band_mm": list(SIZE_BAND_RANGES_MM[self.size_band]),
            "recommended_frame_width_mm": [round(lo, 1), round(hi, 1)],
            "reliable": self.reliable,
        }
        if self.frame_width_mm is not None:
            out["frame_width_mm"] = self.frame_width_mm
            out["verdict"] = self.verdict
        return out



def fit_verdict(frame_width_mm: float, band_mm: tuple[float, float]) -> FitVerdict:
    """Whether a frame's total width falls below, inside (inclusive) or above a width band."""
    lo, hi = band_mm
    if frame_width_mm < lo:
        return "too narrow"
    return "too wide" if frame_width_mm > hi else "good fit"


def fit_advice(m: FaceMeasurements | None, frame_width_mm: float | None) -> FitAdvice | None:
    """The fit rule: the face's recommended band and size, and the frame's verdict against it.

    None without measurements; frame_width_mm: the selected glasses' total width, or None.
    """
    if m is None or not m.reliable:
        # Unreliable (a quality flag, implausible values, a stream not converged yet): the
        # shopper gets no size and no verdict rather than a wrong one.
        return None
    band = (float(m.recommended_frame_width_mm[0]), float(m.recommended_frame_width_mm[1]))
    if frame_width_mm is None:
        return FitAdvice(m.size_band, band, bool(m.reliable))
    width = float(frame_width_mm)
    return FitAdvice(m.size_band, band, bool(m.reliable), width, fit_verdict(width, band))


def size_band(frame_width_mm: float) -> SizeBand:
    """S / M / L for a frame's total width in mm."""
    for limit, band in SIZE_BANDS_MM:
        if frame_width_mm < limit:
            return band  # type: ignore[return-value]
    return "L"


def size_band_hysteresis(
    frame_width_mm: float, previous: SizeBand | None, margin_mm: float = SIZE_BAND_HYSTERESIS_MM
) -> SizeBand:
    """size_band, but keeping `previous` unless the width is past its range by margin_mm."""
    band = size_band(frame_width_mm)
    if previous is None or band == previous:
        return band
    lo, hi = SIZE_BAND_RANGES_MM[previous]
    lo = lo if previous != "S" else -math.inf
    hi = hi if previous != "L" else math.inf
    if lo - margin_mm <= frame_width_mm < hi + margin_mm:
        return previous
    return band
