"""A stream's pooled face measurements (FaceMeter): the estimate, and whether to trust it."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import numpy as np

from vision.fit import SizeBand, frame_band_mm, ideal_frame_width_mm, size_band_hysteresis
from vision.geometry import Camera, HeadPose
from vision.landmarks import Face
from vision.measure import (
    EYE_ROTATION_RADIUS_MM,
    IRIS_DIAMETER_MM,
    IRIS_DIAMETER_SD_MM,
    MAX_POOLED_SPREAD,
    MIN_POOLED_FRAMES,
    POOLABLE_FLAGS,
    FaceMeasurements,
    frame_geometry,
    measure_geometry,
    plausibility_flags,
)


class FaceMeter:
    """Per-stream measurements: the pooled estimate, and whether it can be trusted.

    The face's size (from the irises) is a constant of the person, so it is pooled over recent
    good frames (median); each frame's PD and width (at the pooled scale) are pooled too, and
    the medians are what the stream reports. Frames with a biasing quality flag (turned head,
    closed eyes, a cut-off face, ...) do not add to the pools; a small iris only makes a
    frame noisier, which the median absorbs, so it pools but is not reliable itself.

    Reliable = this frame has no quality flag (iris >= MIN_IRIS_PX, frontal, eyes open, in
    view), the pooled values are plausible, and the estimate has converged (at least
    `min_frames` pooled frames whose PD spread is at most MAX_POOLED_SPREAD). The size band
    has hysteresis (size_band_hysteresis): it changes only when the pooled width is past the
    band's edge by SIZE_BAND_HYSTERESIS_MM.
    """

    def __init__(self, window: int = 150, min_frames: int = MIN_POOLED_FRAMES) -> None:
        self.window = window
        self.min_frames = min_frames
        self._scales: deque[float] = deque(maxlen=window)
        # Each pooled frame's scale-free geometry (pd_cm, distance_cm, width_cm at canonical
        # size): every report scales them all with the current pooled scale, so early frames
        # measured with a not-yet-settled scale do not drag the estimate.
        self._geom: deque[tuple[float, float, float]] = deque(maxlen=window)
        self._band: SizeBand | None = None

    def reset(self) -> None:
        """A new face (a shopper left, another came): forget everything pooled."""
        self._scales.clear()
        self._geom.clear()
        self._band = None

    @property
    def frames_pooled(self) -> int:
        return len(self._scales)

    def update(self, face: Face, pose: HeadPose, camera: Camera) -> FaceMeasurements:
        g = frame_geometry(face, pose, camera)
        poolable = set(g.flags) <= POOLABLE_FLAGS
        if poolable:
            self._scales.append(float(g.eye_scales.mean()))
            self._geom.append((g.pd_cm, g.distance_cm, g.width_cm))
        if len(self._scales) < self.min_frames:
            m = measure_geometry(pose, g, None, None)
            return replace(
                m,
                quality_flags=(*m.quality_flags, "not_converged"),
                reliable=False,
                pooled_frames=len(self._scales),
                converged=False,
            )
        arr = np.fromiter(self._scales, dtype=np.float64, count=len(self._scales))
        med = float(np.median(arr))
        # Population spread of iris size does not average out; the frame noise does.
        mad_sd = 1.4826 * float(np.median(np.abs(arr - med))) / med
        rel = math.sqrt((IRIS_DIAMETER_SD_MM / IRIS_DIAMETER_MM) ** 2 + mad_sd**2 / len(arr))
        frame = measure_geometry(pose, g, med, rel)
        geom = np.array(self._geom, dtype=np.float64)
        dist_mm = 10.0 * med * geom[:, 1]
        pds = 10.0 * med * geom[:, 0] * (dist_mm + EYE_ROTATION_RADIUS_MM) / dist_mm
        widths = 10.0 * med * geom[:, 2]
        pd, width = float(np.median(pds)), float(np.median(widths))
        spread = 1.4826 * float(np.median(np.abs(pds - pd))) / pd
        converged = len(pds) >= self.min_frames and spread <= MAX_POOLED_SPREAD
        # The pooled values' 1-sigma: the scale's (population iris spread and its own frame
        # noise) and the per-frame geometry's spread averaged over the pool, plus 2% model.
        n = len(pds)
        pd_unc = pd * math.sqrt(rel**2 + 0.02**2 + spread**2 / n)
        w_spread = 1.4826 * float(np.median(np.abs(widths - width))) / width
        width_unc = width * math.sqrt(rel**2 + 0.015**2 + w_spread**2 / n)
        flags = tuple(f for f in frame.quality_flags if not f.startswith("implausible_"))
        flags += plausibility_flags(pd, width)
        if not converged:
            flags += ("not_converged",)
        reliable = not flags
        ideal = float(ideal_frame_width_mm(width))
        band = size_band_hysteresis(ideal, self._band)
        if reliable:
            self._band = band  # only a trusted estimate moves the advised size
        return replace(
            frame,
            pd_mm=pd,
            pd_uncertainty_mm=pd_unc,
            face_width_mm=width,
            face_width_uncertainty_mm=width_unc,
            recommended_frame_width_mm=frame_band_mm(width, width_unc),
            size_band=band,
            quality_flags=flags,
            reliable=reliable,
            pooled_frames=n,
            converged=converged,
            extras={**frame.extras, "pd_frame_mm": frame.pd_mm, "pd_spread": spread},
        )
