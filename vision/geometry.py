"""Metric head pose: MediaPipe's face geometry pipeline (weighted Procrustes, pinhole camera)."""

# Conventions (shared with the glasses renderer):
# - Camera space is OpenGL's: centimetres, x right, y up, the camera looks down -z, so a face in
#   front of it has negative z. Image pixels have y down; `Camera.project` does the flip.
# - The canonical face (MediaPipe's model) is in centimetres: +x = the wearer's LEFT, +y up, +z
#   out of the face toward the camera. A frontal face looking into the camera has rotation =
#   identity.

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from vision.errors import OptionsError, PoseError
from vision.landmarks import Face

DATA_FILE = Path(__file__).resolve().parent / "data" / "canonical_face.npz"
NUM_MESH_POINTS = 468
# MediaPipe rejects faces whose landmarks all lie within this normalised radius of their mean.
TOO_COMPACT = 1e-3
# Minor/major axis ratio of the landmarks' 2D spread below which they are taken to lie on a line:
# Procrustes still "succeeds" on such points, with a meaningless pose (a profile face is ~0.4).
TOO_COLLINEAR = 0.02
_EPS = 1e-9


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with a vertical field of view; principal point at the image centre."""

    width: int
    height: int
    fov_y_deg: float = 63.0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise OptionsError(f"camera size must be positive, got {self.width}x{self.height}")
        if not 1.0 <= self.fov_y_deg <= 179.0:
            raise OptionsError(f"fov_y_deg must be in [1, 179], got {self.fov_y_deg}")

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (square pixels)."""
        return 0.5 * self.height / math.tan(math.radians(self.fov_y_deg) / 2.0)

    def intrinsics(self) -> np.ndarray:
        """(3, 3) OpenCV-style K for image coordinates (x right, y down)."""
        f = self.focal_px
        return np.array(
            [[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]]
        )

    def projection_matrix(self, near_cm: float = 1.0, far_cm: float = 10000.0) -> np.ndarray:
        """(4, 4) OpenGL clip-space matrix of this frustum (as MediaPipe's effect renderer)."""
        f = self.focal_px
        return np.array(
            [
                [2.0 * f / self.width, 0.0, 0.0, 0.0],
                [0.0, 2.0 * f / self.height, 0.0, 0.0],
                [0.0, 0.0, -(far_cm + near_cm) / (far_cm - near_cm),
                 -2.0 * far_cm * near_cm / (far_cm - near_cm)],
                [0.0, 0.0, -1.0, 0.0],
            ]
        )

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(n, 3) camera-space cm (z < 0 in front) -> (n, 2) image pixels (y down)."""
        p = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        depth = np.maximum(-p[:, 2], _EPS)
        f = self.focal_px
        u = self.width / 2.0 + f * p[:, 0] / depth
        v = self.height / 2.0 - f * p[:, 1] / depth
        return np.stack([u, v], axis=1)

    def unproject(self, pixels: np.ndarray, depth_cm: np.ndarray | float) -> np.ndarray:
        """(n, 2) pixels at positive depth(s) along -z -> (n, 3) camera-space cm."""
        px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        d = np.broadcast_to(np.asarray(depth_cm, dtype=np.float64), (px.shape[0],))
        f = self.focal_px
        x = (px[:, 0] - self.width / 2.0) * d / f
        y = -(px[:, 1] - self.height / 2.0) * d / f
        return np.stack([x, y, -d], axis=1)


@dataclass(frozen=True)
class CanonicalFace:
    """MediaPipe's canonical face model (cm) and the weighted Procrustes landmark basis.

    vertices (468, 3) float64 cm; triangles (898, 3) int32; procrustes_ids (33,) int32;
    procrustes_weights (33,) float64; vertices_iris (478, 3) and triangles_iris (906, 3): the same
    model with the two 5-point irises.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray
    uv: np.ndarray = field(repr=False)
    vertices_iris: np.ndarray = field(repr=False)
    triangles_iris: np.ndarray = field(repr=False)

    @classmethod
    def load(cls, path: Path | str | None = None) -> CanonicalFace:
        """The vendored model (vision/data/canonical_face.npz) or another .npz of that layout."""
        if path is None:
            return _default_canonical()
        return cls._from_npz(Path(path))

    @classmethod
    def _from_npz(cls, path: Path) -> CanonicalFace:
        with np.load(path) as d:
            arrays = {k: d[k] for k in d.files}
        return cls(
            vertices=arrays["vertices"].astype(np.float64),
            triangles=arrays["triangles"].astype(np.int32),
            procrustes_ids=arrays["procrustes_ids"].astype(np.int32),
            procrustes_weights=arrays["procrustes_weights"].astype(np.float64),
            uv=arrays["uv"].astype(np.float64),
            vertices_iris=arrays["vertices_iris"].astype(np.float64),
            triangles_iris=arrays["triangles_iris"].astype(np.int32),
        )

    @property
    def basis(self) -> np.ndarray:
        """(33, 3) canonical points of the Procrustes basis."""
        return self.vertices[self.procrustes_ids]


@lru_cache(maxsize=1)
def _default_canonical() -> CanonicalFace:
    return CanonicalFace._from_npz(DATA_FILE)


@dataclass(frozen=True)
class HeadPose:
    """Face (canonical cm) -> camera (OpenGL cm) transform and Euler angles in degrees.

    matrix: (4, 4) float64, as MediaPipe returns it (its 3x3 block is a rotation times a scale
    that stays close to 1). Angles come from the rotation R = Ry(yaw) @ Rx(-pitch) @ Rz(roll):
    - yaw_deg > 0: the face turned toward the wearer's LEFT (image right in an unmirrored frame);
      it is the azimuth of the face's forward axis.
    - pitch_deg > 0: chin up, looking up; the elevation of the forward axis.
    - roll_deg > 0: head tilted toward the wearer's RIGHT shoulder, i.e. counter-clockwise as the
      image is viewed.
    fit_rmse_cm: weighted RMS distance between the fitted canonical basis and the metric
    landmarks. metric_landmarks: (478, 3) camera-space cm (MediaPipe's metric landmarks, which
    take their scale from the canonical face's size), or None.
    """

    matrix: np.ndarray
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    fit_rmse_cm: float
    metric_landmarks: np.ndarray | None = field(default=None, repr=False)

    @property
    def translation_cm(self) -> np.ndarray:
        """(3,) position of the canonical origin in camera space (z < 0)."""
        return self.matrix[:3, 3].copy()

    @property
    def scale(self) -> float:
        """Residual scale of the 3x3 block (1.0 = canonical size)."""
        return float(np.cbrt(_det3(self.matrix[:3, :3])))

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) pure rotation part of the matrix."""
        return self.matrix[:3, :3] / self.scale

    def to_dict(self) -> dict[str, object]:
        return {
            "yaw_deg": round(self.yaw_deg, 2),
            "pitch_deg": round(self.pitch_deg, 2),
            "roll_deg": round(self.roll_deg, 2),
            "translation_cm": [round(float(v), 2) for v in self.translation_cm],
            "fit_rmse_cm": round(self.fit_rmse_cm, 3),
            "matrix": [[round(float(v), 5) for v in row] for row in self.matrix],
        }


def euler_from_rotation(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a (3, 3) rotation with HeadPose's convention."""
    r = np.asarray(rot, dtype=np.float64)
    yaw = math.atan2(r[0, 2], r[2, 2])
    pitch = math.asin(float(np.clip(r[1, 2], -1.0, 1.0)))
    roll = math.atan2(r[1, 0], r[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def rotation_from_euler(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """(3, 3) rotation Ry(yaw) @ Rx(-pitch) @ Rz(roll); the inverse of euler_from_rotation."""
    a, b, c = (math.radians(v) for v in (yaw_deg, -pitch_deg, roll_deg))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _det3(m: np.ndarray) -> float:
    """Determinant of a 3x3 matrix (np.linalg.det's overhead dominates at this size)."""
    return float(
        m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
        - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
        + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0])
    )


def transform_points(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) affine transform to (n, 3) points."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    return p @ m[:3, :3].T + m[:3, 3]


def solve_weighted_procrustes(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """(4, 4) similarity T minimising sum w_i |T source_i - target_i|^2 (MediaPipe's solver).

    source, target: (n, 3); weights: (n,) >= 0. Port of procrustes_solver.cc (Akca 2003, 2.4):
    rotation from the SVD of the weighted cross-covariance with reflections disallowed, then the
    optimal scale and translation for that rotation.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= _EPS:
        raise PoseError("the total point weight is too small")
    sw = np.sqrt(w)[:, None]
    ws, wt = src * sw, dst * sw
    center = (ws * sw).sum(axis=0) / total
    cws = ws - center[None, :] * sw  # centred weighted sources
    design = wt.T @ cws
    if np.linalg.norm(design) <= _EPS:
        raise PoseError("design matrix norm is too small")
    u, _, vt = np.linalg.svd(design)
    if _det3(u) * _det3(vt) < 0:
        u[:, 2] *= -1.0
    rot = u @ vt
    denom = float((cws * ws).sum())
    scale = float(((cws @ rot.T) * wt).sum()) / denom if denom > _EPS else 0.0
    if scale <= _EPS:
        raise PoseError("Procrustes scale is too small")
    rs = scale * rot
    translation = ((wt - ws @ rs.T) * sw).sum(axis=0) / total
    out = np.eye(4)
    out[:3, :3] = rs
    out[:3, 3] = translation
    return out


class _Basis:
    """The canonical side of the weighted Procrustes problem, precomputed once per model."""

    def __init__(self, canon: CanonicalFace) -> None:
        w = canon.procrustes_weights
        self.ids = canon.procrustes_ids
        self.sw = np.sqrt(w)[:, None]
        self.total = float(w.sum())
        self.ws = canon.basis * self.sw
        center = (self.ws * self.sw).sum(axis=0) / self.total
        self.cws = self.ws - center[None, :] * self.sw
        self.denom = float((self.cws * self.ws).sum())

    def solve(self, target: np.ndarray) -> np.ndarray:
        """solve_weighted_procrustes(canonical basis, target (33, 3), weights), faster."""
        wt = target * self.sw
        u, _, vt = np.linalg.svd(wt.T @ self.cws)
        if _det3(u) * _det3(vt) < 0:
            u[:, 2] *= -1.0
        rot = u @ vt
        scale = float(((self.cws @ rot.T) * wt).sum()) / self.denom
        if scale <= _EPS:
            raise PoseError("Procrustes scale is too small")
        out = np.eye(4)
        out[:3, :3] = scale * rot
        out[:3, 3] = ((wt - self.ws @ out[:3, :3].T) * self.sw).sum(axis=0) / self.total
        return out


def _basis(canon: CanonicalFace) -> _Basis:
    """The model's precomputed basis, cached on the (frozen, unhashable) model object."""
    cached = canon.__dict__.get("_basis")
    if cached is None:
        cached = _Basis(canon)
        object.__setattr__(canon, "_basis", cached)
    return cached


def estimate_pose(
    face: Face, camera: Camera, canonical: CanonicalFace | None = None
) -> HeadPose:
    """Metric head pose of one face with MediaPipe's screen-to-metric conversion.

    Steps (geometry_pipeline.cc): project the normalised screen landmarks onto the near plane
    (near = 1 cm); estimate the canonical-to-screen scale with a first Procrustes on those flat
    points; use it to turn the relative z into depth and unproject; estimate a second scale on
    those intermediate points; unproject again with the product of both scales; final weighted
    Procrustes of the canonical basis onto these metric landmarks gives the pose.
    Raises PoseError when the landmarks are degenerate (MediaPipe drops such faces).
    """
    canon = canonical or _default_canonical()
    w, h = face.image_size
    lm = np.asarray(face.landmarks, dtype=np.float64)
    if not np.isfinite(lm).all():
        raise PoseError("face landmarks are not finite")
    if camera.width != w or camera.height != h:
        # The camera describes another resolution of the same view: rescale to it.
        lm = lm * np.array([camera.width / w, camera.height / h, camera.width / w])
        w, h = camera.width, camera.height
    # Normalised screen coordinates as MediaPipe has them (z is scaled like x).
    norm = lm / np.array([w, h, w])
    mean_xy = norm[:NUM_MESH_POINTS, :2].mean(axis=0)
    spread = np.sqrt(((norm[:NUM_MESH_POINTS, :2] - mean_xy) ** 2).sum(axis=1).max())
    if not np.isfinite(spread) or spread <= TOO_COMPACT:
        raise PoseError("face landmarks are too compact for a pose estimate")
    axes = np.linalg.svd(norm[:NUM_MESH_POINTS, :2] - mean_xy, compute_uv=False)
    if axes[1] < TOO_COLLINEAR * axes[0]:
        raise PoseError("face landmarks lie on a line; no pose can be solved")

    near = 1.0
    height_near = 2.0 * near * math.tan(math.radians(camera.fov_y_deg) / 2.0)
    width_near = w * height_near / h
    # ProjectXY with the origin at the top-left corner (flip y), z scaled like x.
    screen = np.empty_like(norm)
    screen[:, 0] = norm[:, 0] * width_near - 0.5 * width_near
    screen[:, 1] = (1.0 - norm[:, 1]) * height_near - 0.5 * height_near
    screen[:, 2] = norm[:, 2] * width_near
    mesh = screen[:NUM_MESH_POINTS]
    depth_offset = float(mesh[:, 2].mean())

    def unproject(pts: np.ndarray, scale: float) -> np.ndarray:
        out = np.empty_like(pts)
        z = (pts[:, 2] - depth_offset + near) / scale  # MoveAndRescaleZ
        out[:, 0] = pts[:, 0] * z / near
        out[:, 1] = pts[:, 1] * z / near
        out[:, 2] = -z  # left-handed screen -> right-handed metric
        return out

    basis = _basis(canon)
    ids = basis.ids
    # Only the weighted basis points enter the Procrustes solves (the other weights are 0).
    flat = screen[ids] * np.array([1.0, 1.0, -1.0])
    first = float(np.linalg.norm(basis.solve(flat)[:3, 0]))
    second = float(np.linalg.norm(basis.solve(unproject(screen[ids], first))[:3, 0]))
    metric = unproject(screen, first * second)
    matrix = basis.solve(metric[ids])

    resid = transform_points(matrix, canon.basis) - metric[ids]
    wts = canon.procrustes_weights
    rmse = float(np.sqrt((wts * (resid**2).sum(axis=1)).sum() / wts.sum()))
    scale = float(np.cbrt(_det3(matrix[:3, :3])))
    yaw, pitch, roll = euler_from_rotation(matrix[:3, :3] / scale)
    return HeadPose(
        matrix=matrix,
        yaw_deg=yaw,
        pitch_deg=pitch,
        roll_deg=roll,
        fit_rmse_cm=rmse,
        metric_landmarks=metric,
    )
