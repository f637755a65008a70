"""Is the shopper already wearing glasses? A straight horizontal edge across the nose bridge,
compared with the texture of the face's own cheek skin.

A spectacle frame puts a straight bar across the nose bridge (around landmark 168, between the
inner eye corners) that runs along the eye line and is continuous across the whole gap between
the eyes. Skin and wrinkles have edges too, but they point every way and their signed vertical
gradients average out along a row. So the bridge patch is scored by its strongest row of the
mean signed vertical gradient (a line across the patch), in units of the cheeks' median
gradient, times that row's coherence (|mean dy| / mean |grad|, 1 for a straight edge along the
row), on a face crop rotated so the eye corners lie on one row and scaled to a fixed
inter-ocular distance. Under-eye rims were tried and dropped: lower lids and eye bags give the
same straight edges there on faces without glasses (docs/vision_core.md has the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.landmarks import Face

_IOD = 96.0  # canvas pixels between the outer eye corners (33, 263)
BRIDGE = 168
CHEEKS = (50, 280)
# Measured on the shared photos: with glasses 6.7 and 11.6; without, at most 2.5 (faces turned
# 55-71 degrees, where the patch reaches an eye), 1.8 for the same people without glasses.
THRESHOLD = 4.0


@dataclass(frozen=True)
class WornGlasses:
    """wearing: score >= threshold. score: the bridge's straight-edge response in units of the
    cheeks' gradient level. coherence: the straightness of that edge (0..1)."""

    wearing: bool
    score: float
    coherence: float


def _canvas(frame_bgr: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """Gray face canvas (eye line horizontal, _IOD px between the eye corners) and the
    landmarks mapped onto it."""
    xy = face.xy.astype(np.float64)
    a, b = xy[33], xy[263]
    d = b - a
    iod = max(float(np.hypot(*d)), 1e-3)
    s = _IOD / iod
    c, si = d[0] / iod, d[1] / iod
    rot = s * np.array([[c, si], [-si, c]])
    centre = 0.5 * (a + b)
    size = int(2.4 * _IOD)
    t = np.array([size / 2, size * 0.4]) - rot @ centre
    m = np.hstack([rot, t[:, None]])
    gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    canvas = cv2.warpAffine(gray, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    return canvas.astype(np.float32), xy @ rot.T + t


def _patch(img: np.ndarray, centre: np.ndarray, w: float, h: float) -> np.ndarray:
    x0 = max(round(float(centre[0]) - w / 2), 0)
    y0 = max(round(float(centre[1]) - h / 2), 0)
    return img[y0:y0 + round(h), x0:x0 + round(w)]


def detect_worn_glasses(frame_bgr: np.ndarray, face: Face,
                        threshold: float = THRESHOLD) -> WornGlasses:
    """Whether the face wears real glasses, with the score it is judged on."""
    canvas, pts = _canvas(frame_bgr, face)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 1.0)
    dy = cv2.Sobel(canvas, cv2.CV_32F, 0, 1, ksize=3)
    dx = cv2.Sobel(canvas, cv2.CV_32F, 1, 0, ksize=3)
    mag = np.hypot(dx, dy)
    skin = np.concatenate([_patch(mag, pts[i], 0.25 * _IOD, 0.2 * _IOD).ravel() for i in CHEEKS])
    level = max(float(np.median(skin)) if skin.size else 0.0, 2.0)
    # Between the inner eye corners, from just above 168 down the upper nose bridge.
    c = pts[BRIDGE] + np.array([0.0, 0.06 * _IOD])
    w = 0.5 * abs(float(pts[362, 0] - pts[133, 0]))
    p, q = _patch(dy, c, w, 0.28 * _IOD), _patch(mag, c, w, 0.28 * _IOD)
    if not p.size:
        return WornGlasses(wearing=False, score=0.0, coherence=0.0)
    row = np.abs(p.mean(axis=1))
    coh = row / np.maximum(q.mean(axis=1), 1e-3)  # 1 for a straight edge along the row
    k = int(np.argmax(row * coh))
    score = float(row[k] / level * coh[k])
    return WornGlasses(wearing=score >= threshold, score=score, coherence=float(coh[k]))
