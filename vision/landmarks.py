"""FaceTracker: 478 MediaPipe Face Mesh landmarks (with iris) as typed Face results."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import cv2
import numpy as np

from vision.errors import RunningModeError
from vision.frames import FrameLimits, to_bgr

NUM_LANDMARKS = 478
LEFT_IRIS_CENTER = 473  # the subject's left eye (image right when not mirrored)
RIGHT_IRIS_CENTER = 468


class RunningMode(Enum):
    """IMAGE: every frame is detected from scratch. VIDEO: landmarks are tracked frame to frame."""

    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True)
class FaceTrackerOptions:
    running_mode: RunningMode = RunningMode.IMAGE
    max_faces: int = 1
    refine_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    limits: FrameLimits = field(default_factory=FrameLimits)


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    landmarks: (478, 3) float32; x, y in pixels of the input frame, z relative depth in the same
    pixel scale (MediaPipe's normalised z times the frame width; smaller is nearer the camera).
    bbox: (4,) float32 x_min, y_min, x_max, y_max in pixels. score: face presence in 0..1.
    image_size: (width, height) of the frame the landmarks refer to.
    """

    landmarks: np.ndarray
    bbox: np.ndarray
    score: float
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        if self.landmarks.shape != (NUM_LANDMARKS, 3):
            raise ValueError(f"landmarks must be ({NUM_LANDMARKS}, 3), got {self.landmarks.shape}")
        if self.bbox.shape != (4,):
            raise ValueError(f"bbox must be (4,), got {self.bbox.shape}")

    @property
    def xy(self) -> np.ndarray:
        """(478, 2) pixel coordinates."""
        return self.landmarks[:, :2]

    @classmethod
    def from_landmarks(
        cls, landmarks: np.ndarray, score: float, image_size: tuple[int, int]
    ) -> Face:
        pts = np.asarray(landmarks, dtype=np.float32)
        bbox = np.concatenate([pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)]).astype(np.float32)
        return cls(landmarks=pts, bbox=bbox, score=float(score), image_size=image_size)


def _mediapipe_to_faces(result: Any, width: int, height: int, scores: list[float]) -> list[Face]:
    """Adapter from the legacy solution's protobuf output to Face results."""
    faces: list[Face] = []
    for i, lm in enumerate(result.multi_face_landmarks or []):
        arr = np.array([(p.x, p.y, p.z) for p in lm.landmark], dtype=np.float32)
        if arr.shape[0] != NUM_LANDMARKS:
            continue  # only possible without iris refinement; the Face type requires 478
        arr *= np.array([width, height, width], dtype=np.float32)
        score = scores[i] if i < len(scores) else 1.0
        faces.append(Face.from_landmarks(arr, score, (width, height)))
    return faces


class FaceTracker:
    """Wraps mediapipe.solutions.face_mesh behind a Tasks-style API.

    One tracker per video stream (it keeps tracking state); not safe to share across threads
    concurrently, so calls are serialised by a lock.
    """

    def __init__(self, options: FaceTrackerOptions | None = None) -> None:
        self.options = options or FaceTrackerOptions()
        if not self.options.refine_landmarks:
            raise ValueError("refine_landmarks must be True: Face requires the 10 iris points")
        from mediapipe.python.solutions import face_mesh  # heavy import, kept lazy

        self._mesh = face_mesh.FaceMesh(
            static_image_mode=self.options.running_mode is RunningMode.IMAGE,
            max_num_faces=self.options.max_faces,
            refine_landmarks=True,
            min_detection_confidence=self.options.min_detection_confidence,
            min_tracking_confidence=self.options.min_tracking_confidence,
        )
        self._lock = threading.Lock()
        self._closed = False
        self._last_score = 1.0

    @classmethod
    def create_from_options(cls, options: FaceTrackerOptions) -> FaceTracker:
        return cls(options)

    def process(self, frame_bgr: np.ndarray) -> list[Face]:
        """Landmarks for the faces in a BGR (or gray/BGRA) uint8 frame; [] when none is found."""
        if self._closed:
            raise RunningModeError("tracker is closed")
        frame = to_bgr(frame_bgr, self.options.limits)
        h, w = frame.shape[:2]
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        with self._lock:
            result = self._mesh.process(rgb)
        n = len(result.multi_face_landmarks or [])
        # The legacy graph thresholds presence internally (min_tracking_confidence) and does not
        # expose the score; a returned face passed that threshold.
        return _mediapipe_to_faces(result, w, h, [self._last_score] * n)

    def close(self) -> None:
        if not self._closed:
            self._mesh.close()
            self._closed = True

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
