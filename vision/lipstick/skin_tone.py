"""Skin tone estimate: the nearest Monk Skin Tone band (1..10) from cheek pixels, in CIELAB."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.errors import MeasureError
from vision.landmarks import Face
from vision.lipstick.color import bgr_to_lab, ciede2000, srgb_to_lab

# Monk Skin Tone scale (Google, CC-BY-4.0), the ten published swatches, lightest first.
MONK_HEX = ("#F6EDE4", "#F3E7DB", "#F7EAD0", "#EADABA", "#D7BD96",
            "#A07E56", "#825C43", "#604134", "#3A312A", "#292420")
MONK_LAB = srgb_to_lab(np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in MONK_HEX]))

# Cheek centres on the face mesh (below the eyes, beside the nose), one per side.
CHEEK_IDS = (50, 280, 205, 425)


@dataclass(frozen=True)
class SkinTone:
    """monk_index 1 (lightest) .. 10 (deepest); lab: robust mean cheek colour (L 0..100);
    delta_e: CIEDE2000 to the chosen swatch (large = lighting or camera far from neutral)."""

    monk_index: int
    lab: tuple[float, float, float]
    delta_e: float

    def to_dict(self) -> dict[str, object]:
        return {"monk_index": self.monk_index, "lab": list(self.lab),
                "delta_e": round(self.delta_e, 2)}


def cheek_pixels(frame_bgr: np.ndarray, face: Face) -> np.ndarray:
    """(n, 3) BGR pixels from discs on both cheeks, sized to the face."""
    xy = face.xy
    face_w = float(np.linalg.norm(xy[234] - xy[454]))
    r = max(round(0.06 * face_w), 2)
    mask = np.zeros(frame_bgr.shape[:2], np.uint8)
    for i in CHEEK_IDS:
        x, y = np.round(xy[i]).astype(int)
        cv2.circle(mask, (int(x), int(y)), r, (1,), -1)
    return frame_bgr[mask > 0]


def estimate_skin_tone(frame_bgr: np.ndarray, face: Face) -> SkinTone:
    """Nearest Monk band to the cheeks' colour. Shadows, highlights and stray hair are dropped
    by keeping the middle of the lightness distribution. It is a hint for recommending shades,
    not a measurement: camera white balance and light shift it by a band or more."""
    px = cheek_pixels(frame_bgr, face)
    if len(px) < 20:
        raise MeasureError("too few cheek pixels to estimate a skin tone")
    lab = bgr_to_lab(px.astype(np.float64))
    lo, hi = np.percentile(lab[:, 0], [25, 75])
    mid = lab[(lab[:, 0] >= lo) & (lab[:, 0] <= hi)]
    mean = np.median(mid, axis=0)
    # The scale is ordered by lightness; camera chroma varies far more than the swatches do,
    # so chroma and hue count a third as much as lightness (CIEDE2000 parametric factors).
    de = ciede2000(mean[None, :], MONK_LAB, kc=3.0, kh=3.0)
    k = int(np.argmin(de))
    lab_l, lab_a, lab_b = (round(float(v), 2) for v in mean)
    return SkinTone(monk_index=k + 1, lab=(lab_l, lab_a, lab_b), delta_e=float(de[k]))
