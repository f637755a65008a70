"""Face measurements for eyewear: pupillary distance, temple width, frame size and fit advice."""

# Scale comes from the iris: the visible iris (horizontal visible iris diameter, HVID) of adults
# is 11.7 mm with a spread of about 0.5 mm, and because the wearer looks at the screen beside the
# camera the iris disc faces the camera, so its image is not foreshortened by head yaw. Its pixel
# diameter therefore gives each eye's true distance from the camera. The head pose (fitted on the
# canonical face, which has an average adult's size) gives each eye's depth at canonical size;
# true / canonical depth is the face's scale. Distances are taken in 3D at canonical size (pupils
# on their pixel rays at the fitted eyes' depths, so head yaw does not shorten them) and scaled.

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np

from vision.errors import PoseError
from vision.geometry import Camera, CanonicalFace, HeadPose, estimate_pose, transform_points
from vision.landmarks import Face

IRIS_DIAMETER_MM = 11.7
IRIS_DIAMETER_SD_MM = 0.5
# Distance from the pupil plane to the eye's centre of rotation: converts the near PD seen
# while the eyes converge on the camera into the distance PD that prescriptions use.
EYE_ROTATION_RADIUS_MM = 12.0
RIGHT_IRIS = (468, 469, 470, 471, 472)  # the wearer's right eye: centre, then 4 ring points
LEFT_IRIS = (473, 474, 475, 476, 477)
# Temple points: on the face contour at eye height (canonical y 2.36 cm vs iris 2.64 cm), where
# a frame's hinges sit. 234/454 are 1.7 cm lower on the zygomatic arch, the widest part of the
# cheeks, which overstates the width a frame spans.
TEMPLE_RIGHT, TEMPLE_LEFT = 127, 356
# Eyelid and corner points for the eye-openness check (wearer's right, then left eye).
EYE_LIDS = ((159, 145, 33, 133), (386, 374, 263, 362))
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


# Quality limits.
# The iris must span this many pixels: landmark noise of ~0.5 px is then <= 5% of a diameter
# (at 8 px a still webcam shopper's single-frame PD spread over +-5 mm). ~45 cm from a 640x480
# webcam with a 63 deg vertical view.
MIN_IRIS_PX = 10.0
MAX_YAW_DEG = 20.0
MAX_PITCH_DEG = 25.0
MAX_IRIS_MISMATCH = 0.12
MIN_EYE_OPENNESS = 0.12
MIN_SCORE = 0.5
# Closer than this the face's own depth (~10 cm eyes to temples) distorts the perspective and
# the frame is most likely a crop whose field of view is not the camera model's: no advice.
MIN_DISTANCE_CM = 25.0
POOLABLE_FLAGS = frozenset({"face_too_small"})
# Plausible adult ranges; outside them a measurement is flagged (implausible_pd,
# implausible_face_width) and not advised on. PD: adult distance PD is 54-74 mm for the
# 1st-99th percentile (Dodgson 2004, mean 63.4, sd 3.8); 50-80 leaves room for the rare
# adult and our own uncertainty. Face width (the temple contour 127-356): the canonical adult
# face is 154.9 mm; 110-180 mm.
PD_PLAUSIBLE_MM = (50.0, 80.0)
FACE_WIDTH_PLAUSIBLE_MM = (110.0, 180.0)
# A stream's pooled estimate has converged with at least this many pooled frames and a
# per-frame spread (robust sd / median) of PD at most MAX_POOLED_SPREAD.
MIN_POOLED_FRAMES = 30
MAX_POOLED_SPREAD = 0.04

SizeBand = Literal["S", "M", "L"]
FitVerdict = Literal["good fit", "too narrow", "too wide"]


@dataclass(frozen=True)
class FaceMeasurements:
    """Measurements in millimetres with 1-sigma uncertainties; `reliable` = no quality flag.

    pd_mm: distance pupillary distance (eyes parallel); pd_near_mm: as seen, eyes converged on
    the camera. quality_flags: face_too_small (iris under MIN_IRIS_PX), turned_too_far,
    partially_outside, eyes_closed, iris_mismatch, low_score, too_close (under
    MIN_DISTANCE_CM), implausible_pd, implausible_face_width (outside PD_PLAUSIBLE_MM /
    FACE_WIDTH_PLAUSIBLE_MM) and, on a stream, not_converged (FaceMeter).
    """

    pd_mm: float
    pd_uncertainty_mm: float
    face_width_mm: float
    face_width_uncertainty_mm: float
    recommended_frame_width_mm: tuple[float, float]
    size_band: SizeBand
    quality_flags: tuple[str, ...]
    reliable: bool
    pd_near_mm: float = 0.0
    distance_cm: float = 0.0
    iris_px: float = 0.0
    extras: dict[str, float] = field(default_factory=dict, repr=False)
    # Stream (FaceMeter) only: frames pooled into this estimate; whether it has converged.
    pooled_frames: int = 0
    converged: bool = True

    @property
    def size_band_mm(self) -> tuple[float, float]:
        """The advised size's own frame-width range (non-overlapping between sizes)."""
        return SIZE_BAND_RANGES_MM[self.size_band]

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 2)
        d["recommended_frame_width_mm"] = [round(v, 1) for v in self.recommended_frame_width_mm]
        d["size_band_mm"] = list(self.size_band_mm)
        d["quality_flags"] = list(self.quality_flags)
        d["extras"] = {k: round(v, 4) for k, v in self.extras.items()}
        return d

    def withheld_dict(self) -> dict[str, object]:
        """For a photo that cannot be measured: why (quality_flags), and no numbers to act on."""
        return {
            "reliable": False,
            "quality_flags": list(self.quality_flags),
            "iris_px": round(self.iris_px, 2),
            "distance_cm": round(self.distance_cm, 2),
        }


def plausibility_flags(pd_mm: float, face_width_mm: float) -> tuple[str, ...]:
    """implausible_pd / implausible_face_width outside the plausible adult ranges."""
    flags = []
    if not PD_PLAUSIBLE_MM[0] <= pd_mm <= PD_PLAUSIBLE_MM[1]:
        flags.append("implausible_pd")
    if not FACE_WIDTH_PLAUSIBLE_MM[0] <= face_width_mm <= FACE_WIDTH_PLAUSIBLE_MM[1]:
        flags.append("implausible_face_width")
    return tuple(flags)


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


def iris_diameters_px(face: Face) -> np.ndarray:
    """(2,) mean of the horizontal and vertical iris diameters in pixels: (right eye, left eye)."""
    xy = face.xy.astype(np.float64)
    out = []
    for _, a, b, c, d in (RIGHT_IRIS, LEFT_IRIS):
        out.append(0.5 * (np.linalg.norm(xy[a] - xy[c]) + np.linalg.norm(xy[b] - xy[d])))
    return np.array(out)


def _eye_openness(face: Face) -> float:
    xy = face.xy.astype(np.float64)
    ratios = [float(np.linalg.norm(xy[t] - xy[b])) / max(float(np.linalg.norm(xy[o] - xy[i])), 1e-6)
              for t, b, o, i in EYE_LIDS]
    return float(min(ratios))


def _quality_flags(face: Face, pose: HeadPose, iris_px: np.ndarray, mismatch: float,
                   openness: float) -> tuple[str, ...]:
    flags = []
    if iris_px.min() < MIN_IRIS_PX:
        flags.append("face_too_small")
    if abs(pose.yaw_deg) > MAX_YAW_DEG or abs(pose.pitch_deg) > MAX_PITCH_DEG:
        flags.append("turned_too_far")
    w, h = face.image_size
    xy = face.xy
    if (xy[:, 0].min() < 0 or xy[:, 1].min() < 0 or xy[:, 0].max() > w or xy[:, 1].max() > h):
        flags.append("partially_outside")
    if openness < MIN_EYE_OPENNESS:
        flags.append("eyes_closed")
    if mismatch > MAX_IRIS_MISMATCH:
        flags.append("iris_mismatch")
    if face.score < MIN_SCORE:
        flags.append("low_score")
    return tuple(flags)


def _distance_flags(distance_cm: float) -> tuple[str, ...]:
    return ("too_close",) if 0 < distance_cm < MIN_DISTANCE_CM else ()


@dataclass(frozen=True)
class _FrameGeometry:
    eye_scales: np.ndarray  # (2,) true / canonical size, from each iris
    pd_cm: float  # pupil distance in canonical-size cm
    width_cm: float  # temple width in canonical-size cm
    distance_cm: float  # eyes' midpoint from the camera, canonical-size cm
    iris_px: np.ndarray  # (2,)
    mismatch: float  # relative disagreement of the two eyes' scales
    openness: float  # the less open eye's lid gap / eye width
    flags: tuple[str, ...]


def _frame_geometry(face: Face, pose: HeadPose, camera: Camera) -> _FrameGeometry:
    metric = pose.metric_landmarks
    if metric is None:
        raise PoseError("pose has no metric landmarks; use estimate_pose")
    iris_px = iris_diameters_px(face) * (camera.height / face.image_size[1])
    xy = face.xy[[RIGHT_IRIS[0], LEFT_IRIS[0]]].astype(np.float64)
    xy = xy * (camera.height / face.image_size[1])
    # Pupils on their pixel rays at the depth of the fitted model's eyes: the 33-point fit gives
    # a steadier depth (and so yaw foreshortening) than the iris points' own relative z.
    eyes_fit = transform_points(pose.matrix, CanonicalFace.load().vertices_iris[[468, 473]])
    depth = np.maximum(-eyes_fit[:, 2], 1e-6)
    pupils = camera.unproject(xy, depth)
    true_depth = camera.focal_px * (IRIS_DIAMETER_MM / 10.0) / np.maximum(iris_px, 1e-6)
    eye_scales = true_depth / depth
    mismatch = float(abs(eye_scales[0] - eye_scales[1]) / eye_scales.mean())
    openness = _eye_openness(face)
    return _FrameGeometry(
        eye_scales=eye_scales,
        pd_cm=float(np.linalg.norm(pupils[1] - pupils[0])),
        width_cm=float(np.linalg.norm(metric[TEMPLE_LEFT] - metric[TEMPLE_RIGHT])),
        distance_cm=float(np.linalg.norm(pupils.mean(axis=0))),
        iris_px=iris_px,
        mismatch=mismatch,
        openness=openness,
        flags=_quality_flags(face, pose, iris_px, mismatch, openness),
    )


def measure_face(
    face: Face, pose: HeadPose | None, camera: Camera, *, scale: float | None = None,
    scale_rel_sd: float | None = None,
) -> FaceMeasurements:
    """PD, temple width and frame-size advice for one face (pose from estimate_pose).

    scale/scale_rel_sd: the face's true/canonical size and its relative 1-sigma error when known
    from earlier frames (FaceMeter); by default this frame's irises give it.
    """
    if pose is None or pose.metric_landmarks is None:
        pose = estimate_pose(face, camera)
    return _measure(pose, _frame_geometry(face, pose, camera), scale, scale_rel_sd)


def _measure(pose: HeadPose, g: _FrameGeometry, scale: float | None,
             scale_rel_sd: float | None) -> FaceMeasurements:
    mismatch = g.mismatch
    if scale is None:
        scale = float(g.eye_scales.mean())
        # 1-sigma: population spread of the iris size, half a pixel on each of the two iris
        # diameters, and the two eyes' disagreement.
        scale_rel_sd = math.sqrt(
            (IRIS_DIAMETER_SD_MM / IRIS_DIAMETER_MM) ** 2
            + (0.5 / max(float(g.iris_px.mean()), 1e-6)) ** 2 / 2.0
            + (mismatch / 2.0) ** 2
        )
    rel_scale = scale_rel_sd if scale_rel_sd is not None else IRIS_DIAMETER_SD_MM / IRIS_DIAMETER_MM

    pd_near = 10.0 * scale * g.pd_cm
    distance_mm = 10.0 * scale * g.distance_cm
    pd = pd_near * (distance_mm + EYE_ROTATION_RADIUS_MM) / distance_mm
    width = 10.0 * scale * g.width_cm
    # Geometry terms on top of the scale: the pupil rays' residual yaw error, and for the
    # contour-based width the sliding of silhouette points as the head turns (an occluded
    # temple is guessed by the model).
    yaw = math.radians(abs(pose.yaw_deg))
    pd_unc = pd * math.sqrt(rel_scale**2 + 0.02**2 + (0.1 * math.sin(yaw)) ** 2)
    width_unc = width * math.sqrt(rel_scale**2 + 0.015**2 + (0.15 * math.sin(yaw)) ** 2)

    band = frame_band_mm(width, width_unc)
    flags = g.flags + _distance_flags(distance_mm / 10.0) + plausibility_flags(pd, width)
    return FaceMeasurements(
        pd_mm=pd,
        pd_uncertainty_mm=pd_unc,
        face_width_mm=width,
        face_width_uncertainty_mm=width_unc,
        recommended_frame_width_mm=band,
        size_band=size_band(float(ideal_frame_width_mm(width))),
        quality_flags=flags,
        reliable=not flags,
        pd_near_mm=pd_near,
        distance_cm=distance_mm / 10.0,
        iris_px=float(g.iris_px.mean()),
        extras={"scale": scale, "frame_scale": float(g.eye_scales.mean()),
                "iris_mismatch": mismatch, "eye_openness": g.openness},
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
        g = _frame_geometry(face, pose, camera)
        poolable = set(g.flags) <= POOLABLE_FLAGS
        if poolable:
            self._scales.append(float(g.eye_scales.mean()))
            self._geom.append((g.pd_cm, g.distance_cm, g.width_cm))
        if len(self._scales) < self.min_frames:
            m = _measure(pose, g, None, None)
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
        frame = _measure(pose, g, med, rel)
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
