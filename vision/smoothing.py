"""One Euro filter over landmark arrays: less jitter when still, little lag when moving fast."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from vision.errors import OptionsError
from vision.landmarks import Face

# A gap longer than this (a dropped stream, a paused camera) restarts the filter instead of
# dragging the old position into the new one.
MAX_GAP_S = 0.5


@dataclass(frozen=True)
class SmoothingOptions:
    """One Euro parameters (Casiez et al. 2012).

    min_cutoff (Hz): cut-off when still; lower = less jitter, more lag at slow speeds.
    beta: how fast the cut-off rises with speed, per (scale unit / s); higher = less lag.
    d_cutoff (Hz): cut-off of the speed estimate itself.
    Defaults chosen on the shared videos (docs/vision_core.md): with the speed measured in face
    sizes per second (LandmarkSmoother passes the face's size in pixels as `scale`), beta=5
    halves jitter when still and lags about one frame (40-50 ms) on the fastest motion.
    """

    min_cutoff: float = 1.0
    beta: float = 5.0
    d_cutoff: float = 1.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise OptionsError("min_cutoff and d_cutoff must be > 0 and beta >= 0")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vectorised One Euro filter over an (n, k) array: n points of k coordinates.

    The speed that opens the cut-off is per point (the norm over its k coordinates, divided by
    `scale`), so a point's coordinates move together and shapes do not shear. A 1-D array is
    filtered element-wise.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 5.0, d_cutoff: float = 1.0):
        self.options = SmoothingOptions(min_cutoff, beta, d_cutoff)
        self.reset()

    @classmethod
    def from_options(cls, options: SmoothingOptions) -> OneEuroFilter:
        return cls(options.min_cutoff, options.beta, options.d_cutoff)

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def filter(self, points: np.ndarray, t_s: float, scale: float = 1.0) -> np.ndarray:
        """Smoothed copy of `points` observed at time t_s (seconds, increasing).

        scale: the unit speeds are measured in (e.g. the face size in pixels), so one beta works
        at any resolution. A new shape, a time step <= 0 s or a gap > MAX_GAP_S restarts or
        holds the filter as documented: restart returns the input unchanged; a repeated
        timestamp returns the last output.
        """
        x = np.asarray(points, dtype=np.float64)
        prev, prev_dx = self._x, self._dx
        if prev is None or prev_dx is None or prev.shape != x.shape or t_s - self._t > MAX_GAP_S:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t_s)
            return x.copy()
        dt = float(t_s) - self._t
        if dt <= 0.0:
            return prev.copy()
        opts = self.options
        dx = (x - prev) / dt
        a_d = _alpha(opts.d_cutoff, dt)
        dx_hat = a_d * dx + (1.0 - a_d) * prev_dx
        speed = np.abs(dx_hat) if x.ndim == 1 else np.linalg.norm(dx_hat, axis=-1, keepdims=True)
        cutoff = opts.min_cutoff + opts.beta * speed / max(float(scale), 1e-9)
        a = _alpha(cutoff, dt)
        x_hat = a * x + (1.0 - a) * prev
        self._x, self._dx, self._t = x_hat, dx_hat, float(t_s)
        return x_hat.copy()


def face_scale(face: Face) -> float:
    """Face size in pixels (mean of the landmark box's sides): the smoother's speed unit."""
    w = float(face.bbox[2] - face.bbox[0])
    h = float(face.bbox[3] - face.bbox[1])
    return max(0.5 * (w + h), 1.0)


class LandmarkSmoother:
    """Per-stream smoothing of Face landmarks; one filter per face slot (VIDEO mode only).

    With several faces, each face keeps the filter of the nearest face of the previous frame
    (the tracker's output order is not guaranteed to be stable).
    """

    def __init__(self, options: SmoothingOptions | None = None) -> None:
        self.options = options or SmoothingOptions()
        self._filters: list[OneEuroFilter] = []
        self._centres = np.zeros((0, 2))

    def reset(self) -> None:
        self._filters = []
        self._centres = np.zeros((0, 2))

    def _assign(self, faces: list[Face]) -> list[OneEuroFilter]:
        centres = np.array([(f.bbox[:2] + f.bbox[2:]) / 2 for f in faces]).reshape(-1, 2)
        if len(faces) != len(self._filters):
            filters = [OneEuroFilter.from_options(self.options) for _ in faces]
        elif len(faces) <= 1:
            filters = self._filters
        else:
            # Greedy nearest-centre matching; a handful of faces at most.
            d = np.linalg.norm(centres[:, None, :] - self._centres[None, :, :], axis=2)
            order: list[int] = []
            for i in range(len(faces)):
                j = int(np.argmin(np.where(np.isin(np.arange(d.shape[1]), order), np.inf, d[i])))
                order.append(j)
            filters = [self._filters[j] for j in order]
        self._filters, self._centres = filters, centres
        return filters

    def smooth(self, faces: list[Face], t_s: float) -> list[Face]:
        """Smoothed faces (same order); a frame without faces resets the filters."""
        if not self.options.enabled:
            return faces
        out = []
        for face, filt in zip(faces, self._assign(faces), strict=True):
            pts = filt.filter(face.landmarks, t_s, scale=face_scale(face)).astype(np.float32)
            bbox = np.concatenate([pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)])
            out.append(dataclasses.replace(face, landmarks=pts, bbox=bbox.astype(np.float32)))
        return out
