"""FaceTracker on ONNX Runtime: MediaPipe's face-mesh pipeline rebuilt around the converted
models (BlazeFace short range -> rotated face region -> attention mesh model, 478 points with
irises), tracking from the previous frame's landmarks in VIDEO mode."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from vision.errors import OptionsError, RunningModeError
from vision.face_detect import FaceCrop
from vision.frames import to_bgr
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.landmarks_onnx import attention, blazeface
from vision.landmarks_onnx.models import DETECTOR, MESH, LandmarkModels, shared_models

MESH_INPUT = 192
FACE_SCALE = 1.5  # RectTransformation of the face ROI (from a detection or from landmarks)
ROT_FROM, ROT_TO = 33, 263  # rotation of the ROI from landmarks


@dataclass(frozen=True)
class Roi:
    """A square, rotated region in frame pixels: centre, side, rotation (radians, clockwise
    as seen in the image, MediaPipe's NormalizedRect.rotation)."""

    cx: float
    cy: float
    side: float
    angle: float

    def box(self) -> np.ndarray:
        h = self.side / 2
        return np.array([self.cx - h, self.cy - h, self.cx + h, self.cy + h])


def _normalize_radians(a: float) -> float:
    return a - 2 * np.pi * np.floor((a + np.pi) / (2 * np.pi))


def roi_from_points(p0: np.ndarray, p1: np.ndarray, pts: np.ndarray, scale: float) -> Roi:
    """MediaPipe's DetectionsToRects + RectTransformation(square_long, scale): the axis-aligned
    box of pts, rotated so p0 -> p1 is horizontal, squared on its long side and scaled."""
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    angle = _normalize_radians(-np.arctan2(-(p1[1] - p0[1]), p1[0] - p0[0]))
    c = (lo + hi) / 2
    return Roi(float(c[0]), float(c[1]), float(max(hi - lo)) * scale, float(angle))


def _roi_matrix(roi: Roi, size: int) -> np.ndarray:
    """2x3 affine from tensor pixel (u, v) in [0, size] to frame pixels."""
    c, s = np.cos(roi.angle), np.sin(roi.angle)
    k = roi.side / size
    return np.array([[c * k, -s * k, roi.cx - roi.side / 2 * (c - s)],
                     [s * k, c * k, roi.cy - roi.side / 2 * (s + c)]])


def crop_roi(rgb: np.ndarray, roi: Roi, size: int) -> np.ndarray:
    """The ROI warped to size x size (bilinear, border replicated), float32 in [0, 1]."""
    out = blazeface.warp_rect(rgb, roi.cx, roi.cy, roi.side, roi.side, roi.angle, size, size,
                              cv2.BORDER_REPLICATE)
    return out.astype(np.float32) * (1.0 / 255.0)


def project(points: np.ndarray, roi: Roi, size: int) -> np.ndarray:
    """(n, 3) tensor-pixel landmarks -> frame pixels; z scaled like x (LandmarkProjection)."""
    m = _roi_matrix(roi, size)
    out = np.empty_like(points, dtype=np.float64)
    out[:, :2] = points[:, :2] @ m[:, :2].T + m[:, 2]
    out[:, 2] = points[:, 2] * (roi.side / size)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.clip(hi - lo, 0, None).prod())
    union = float((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod()) - inter
    return inter / max(union, 1e-9)


@dataclass
class _Track:
    roi: Roi
    score: float  # the detection score this face was found with


class OnnxFaceTracker(FaceTracker):
    """The `onnx` landmark backend (FaceTrackerOptions(backend="onnx")); same API and Face
    results as the MediaPipe one. Models are shared by all trackers in the process; each
    tracker keeps its own tracking state and serialises its calls with a lock."""

    def __init__(self, options: FaceTrackerOptions | None = None) -> None:
        self.options = options or FaceTrackerOptions()
        if not self.options.refine_landmarks:
            raise OptionsError("refine_landmarks must be True: Face requires the 10 iris points")
        if self.options.search_after_lost < 1:
            raise OptionsError("search_after_lost must be >= 1")
        self.models: LandmarkModels = shared_models(
            self.options.providers, self.options.batch_window_ms)
        self.models.register()
        self._tracks: list[_Track] = []
        self._detector = None
        self._crop_mesh = None
        self._lost = 0
        self._roi = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def provider(self) -> str:
        return self.models.provider

    def process(self, frame_bgr: np.ndarray) -> list[Face]:
        if self._closed:
            raise RunningModeError("tracker is closed")
        frame = to_bgr(frame_bgr, self.options.limits)
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        with self._lock:
            video = self.options.running_mode is RunningMode.VIDEO
            faces = self._run(rgb, self._tracks if video else [], self.options.max_faces)
            self._tracks = [t for _, t in faces] if video else []
            out = [f for f, _ in faces]
            if self.options.small_faces:
                out = self._small_faces(frame, out)
        return out

    # -- the pipeline ----------------------------------------------------------------------

    def _detect(self, rgb: np.ndarray, max_faces: int) -> list[_Track]:
        x, x0, y0, side = blazeface.letterbox(rgb)
        reg, cls = self.models.run(DETECTOR, x[None])
        dets = blazeface.decode(reg[0].reshape(-1, 16), cls[0],
                                self.options.min_detection_confidence, x0, y0, side)[:max_faces]
        out = []
        for d in dets:
            corners = d.box.reshape(2, 2)
            out.append(_Track(roi_from_points(d.keypoints[0], d.keypoints[1], corners, FACE_SCALE),
                              d.score))
        return out

    def _run(self, rgb: np.ndarray, tracks: list[_Track], max_faces: int
             ) -> list[tuple[Face, _Track]]:
        tracks = list(tracks)
        if len(tracks) < max_faces:  # detection only when a face is missing
            for d in self._detect(rgb, max_faces):
                if all(_iou(d.roi.box(), t.roi.box()) <= 0.5 for t in tracks):
                    tracks.append(d)
            tracks = tracks[:max_faces]
        if not tracks:
            return []
        h, w = rgb.shape[:2]
        x = np.stack([crop_roi(rgb, t.roi, MESH_INPUT) for t in tracks])
        outs = self.models.run(MESH, x)
        flags = outs[attention.FLAG]
        presence = 1.0 / (1.0 + np.exp(-flags[:, 0].astype(np.float64)))
        min_presence = self.options.min_tracking_confidence
        out = []
        for i in range(len(tracks)):
            if presence[i] < min_presence:
                continue
            full = project(attention.refine(outs, i), tracks[i].roi, MESH_INPUT)
            face = Face.from_landmarks(full, tracks[i].score, (w, h))
            # MediaPipe's next region comes from the refined 478 landmarks
            nxt = roi_from_points(full[ROT_FROM, :2], full[ROT_TO, :2], full[:, :2], FACE_SCALE)
            out.append((face, _Track(nxt, tracks[i].score)))
        return out

    def _mesh_on_crop(self, frame: np.ndarray, crop: FaceCrop, score: float | None
                      ) -> Face | None:
        rgb = cv2.cvtColor(crop.image, cv2.COLOR_BGR2RGB)
        found = self._run(rgb, [], 1)
        if not found:
            return None
        face, track = found[0]
        h, w = frame.shape[:2]
        return Face.from_landmarks(crop.to_frame(face.landmarks),
                                   track.score if score is None else score, (w, h))

    def close(self) -> None:
        if not self._closed:
            self.models.unregister()
            if self._detector is not None:
                self._detector.close()
            self._closed = True


__all__ = ["OnnxFaceTracker", "Roi", "crop_roi", "project", "roi_from_points"]
