"""Lip contours from the 478 face-mesh landmarks: index lists and smooth spline curves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MediaPipe face-mesh lip rings, each from the wearer's right mouth corner (image left when the
# camera is not mirrored) to the left one. Outer = vermilion border, inner = where the lips meet.
OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
ALL_LIP_IDS = tuple(sorted(set(OUTER_UPPER + OUTER_LOWER + INNER_UPPER + INNER_LOWER)))


def catmull_rom(points: np.ndarray, samples_per_segment: int = 8, alpha: float = 0.5) -> np.ndarray:
    """Open centripetal Catmull-Rom spline through (..., n, 2) points -> (..., m, 2), ends
    included; leading axes are independent curves of n points each, computed in one pass.

    Centripetal (alpha=0.5) never overshoots or loops between close points, which matters at the
    mouth corners where landmarks bunch up. The end tangents come from mirrored phantom points,
    so each curve stays a cusp at the corners instead of being rounded off.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-2] < 3:
        return p.copy()
    ext = np.concatenate(
        [2 * p[..., :1, :] - p[..., 1:2, :], p, 2 * p[..., -1:, :] - p[..., -2:-1, :]], axis=-2
    )
    p0, p1, p2, p3 = ext[..., :-3, :], ext[..., 1:-2, :], ext[..., 2:-1, :], ext[..., 3:, :]

    def knot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(np.linalg.norm(b - a, axis=-1), 1e-6) ** alpha

    t0 = np.zeros(p1.shape[:-1])
    t1 = t0 + knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    u = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)
    # t per segment and sample (last axis), between t1 and t2.
    t = t1[..., None] + (t2 - t1)[..., None] * u

    def w(ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
        return ((tb[..., None] - t) / (tb - ta)[..., None])[..., None]

    def lerp(pa: np.ndarray, pb: np.ndarray, wa: np.ndarray) -> np.ndarray:
        return wa * pa[..., None, :] + (1 - wa) * pb[..., None, :]

    a1 = lerp(p0, p1, w(t0, t1))
    a2 = lerp(p1, p2, w(t1, t2))
    a3 = lerp(p2, p3, w(t2, t3))
    wb1 = w(t0, t2)
    b1 = wb1 * a1 + (1 - wb1) * a2
    wb2 = w(t1, t3)
    b2 = wb2 * a2 + (1 - wb2) * a3
    wc = w(t1, t2)
    c = wc * b1 + (1 - wc) * b2
    lead = p.shape[:-2]
    return np.concatenate([c.reshape(*lead, -1, 2), p[..., -1:, :]], axis=-2)


def lip_curves(xy: np.ndarray, rings: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """The spline of each ring in `rings` (all of the same length), (len(rings), m, 2)."""
    return catmull_rom(xy[np.array(rings)])


RINGS = (OUTER_UPPER, OUTER_LOWER, INNER_UPPER, INNER_LOWER)


@dataclass(frozen=True)
class LipSplines:
    """The four lip rings' splines of one face (RINGS order), computed once per frame: the
    mask and the gloss shading both draw from them."""

    curves: np.ndarray  # (4, m, 2) pixels

    @classmethod
    def of(cls, xy: np.ndarray) -> LipSplines:
        return cls(lip_curves(xy, RINGS))

    def outer(self) -> np.ndarray:
        """Closed outer border (m, 2): the upper curve corner to corner, the lower one back."""
        return _closed(self.curves[0], self.curves[1])

    def inner(self) -> np.ndarray:
        """Closed inner border (the mouth opening), (m, 2)."""
        return _closed(self.curves[2], self.curves[3])


def _closed(up: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return np.vstack([up, lo[::-1][1:-1]])


def mouth_width(xy: np.ndarray) -> float:
    """Corner-to-corner distance in pixels, the scale every lip tolerance is expressed in."""
    return float(np.linalg.norm(xy[OUTER_UPPER[0]] - xy[OUTER_UPPER[-1]]))


def mouth_opening(xy: np.ndarray) -> float:
    """Gap between the inner lips at the centre, as a fraction of the mouth width."""
    gap = float(np.linalg.norm(xy[13] - xy[14]))
    return gap / max(mouth_width(xy), 1e-6)
