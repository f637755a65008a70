"""Face measurements for eyewear from one frame: pupillary distance, temple width, quality."""

# Scale comes from the iris: the visible iris (horizontal visible iris diameter, HVID) of adults
# is 11.7 mm with a spread of about 0.5 mm, and because the wearer looks at the screen beside the
# camera the iris disc faces the camera, so its image is not foreshortened by head yaw. Its pixel
# diameter therefore gives each eye's true distance from the camera. The head pose (fitted on the
# canonical face, which has an average adult's size) gives each eye's depth at canonical size;
# true / canonical depth is the face's scale. Distances are taken in 3D at canonical size (pupils
# on their pixel rays at the fitted eyes' depths, so head yaw does not shorten them) and scaled.

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from vision.errors import PoseError

# The fit rule lives in vision.fit; its names stay importable from here for their many users.
from vision.fit import FRAME_BAND_HALF_MM as FRAME_BAND_HALF_MM
from vision.fit import FRAME_FIT_TOLERANCE_MM as FRAME_FIT_TOLERANCE_MM
from vision.fit import FRAME_TO_TEMPLE_WIDTH as FRAME_TO_TEMPLE_WIDTH
from vision.fit import SIZE_BAND_HYSTERESIS_MM as SIZE_BAND_HYSTERESIS_MM
from vision.fit import SIZE_BAND_RANGES_MM as SIZE_BAND_RANGES_MM
from vision.fit import SIZE_BANDS_MM as SIZE_BANDS_MM
from vision.fit import FitAdvice as FitAdvice
from vision.fit import FitVerdict as FitVerdict
from vision.fit import SizeBand as SizeBand
from vision.fit import fit_advice as fit_advice
from vision.fit import fit_verdict as fit_verdict
from vision.fit import frame_band_mm as frame_band_mm
from vision.fit import frame_fits as frame_fits
from vision.fit import ideal_frame_width_mm as ideal_frame_width_mm
from vision.fit import size_band as size_band
from vision.fit import size_band_hysteresis as size_band_hysteresis
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
class FrameGeometry:
    eye_scales: np.ndarray  # (2,) true / canonical size, from each iris
    pd_cm: float  # pupil distance in canonical-size cm
    width_cm: float  # temple width in canonical-size cm
    distance_cm: float  # eyes' midpoint from the camera, canonical-size cm
    iris_px: np.ndarray  # (2,)
    mismatch: float  # relative disagreement of the two eyes' scales
    openness: float  # the less open eye's lid gap / eye width
    flags: tuple[str, ...]


def frame_geometry(face: Face, pose: HeadPose, camera: Camera) -> FrameGeometry:
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
    return FrameGeometry(
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
    return measure_geometry(pose, frame_geometry(face, pose, camera), scale, scale_rel_sd)


def measure_geometry(pose: HeadPose, g: FrameGeometry, scale: float | None,
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
