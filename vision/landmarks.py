"""FaceTracker: 478 MediaPipe Face Mesh landmarks (with iris) as typed Face results."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import cv2
import numpy as np

from vision.errors import LandmarkError, OptionsError, RunningModeError
from vision.face_detect import DetectorOptions, FaceCrop, FullRangeDetector, face_crop
from vision.frames import FrameLimits, to_bgr

NUM_LANDMARKS = 478
LEFT_IRIS_CENTER = 473  # the subject's left eye (image right when not mirrored)
RIGHT_IRIS_CENTER = 468


_ROI_MARGIN = 1.7  # crop side / landmark box side when a face is followed or refined on a crop


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
    # Small and distant faces (vision/face_detect.py): when the mesh's short-range detector
    # finds fewer than max_faces (IMAGE) or has lost the face for `search_after_lost` frames
    # (VIDEO, then every that many frames while lost), the full-range detector looks for faces
    # and the mesh runs on an upscaled crop around each. False keeps the plain mesh.
    small_faces: bool = True
    search_after_lost: int = 5
    # IMAGE: a face the mesh found narrower than this share of the frame's longer side is run
    # again on an upscaled crop around its landmarks (the mesh's own 128 px detector leaves the
    # landmark model a poor region for small faces: 12-42% NME at 100-150 px in 1200 px, 5-7%
    # on the crop).
    refine_below: float = 0.25
    detector: DetectorOptions = field(default_factory=DetectorOptions)
    # Landmark backend (see BACKENDS): "mediapipe" (the legacy face-mesh graph, CPU) or "onnx"
    # (the same models converted to ONNX on ONNX Runtime, vision/landmarks_onnx: CPU or GPU).
    backend: str = "mediapipe"
    # onnx only: execution providers, short names allowed ("cuda", "tensorrt", "cpu");
    # empty = the best available, CPU last. batch_window_ms > 0 gathers concurrent trackers'
    # model calls into one batch for at most that long.
    providers: tuple[str, ...] = ()
    batch_window_ms: float = 0.0


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    landmarks: (478, 3) float32; x, y in pixels of the input frame, z relative depth in the same
    pixel scale (MediaPipe's normalised z times the frame width; smaller is nearer the camera).
    bbox: (4,) float32 x_min, y_min, x_max, y_max in pixels. score: face presence in 0..1, the
    face detector's score when it found this face (carried over while the graph tracks).
    image_size: (width, height) of the frame the landmarks refer to.
    """

    landmarks: np.ndarray
    bbox: np.ndarray
    score: float
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        if self.landmarks.shape != (NUM_LANDMARKS, 3):
            raise LandmarkError(
                f"landmarks must be ({NUM_LANDMARKS}, 3), got {self.landmarks.shape}")
        if self.bbox.shape != (4,):
            raise LandmarkError(f"bbox must be (4,), got {self.bbox.shape}")

    @property
    def xy(self) -> np.ndarray:
        """(478, 2) pixel coordinates."""
        return self.landmarks[:, :2]

    @classmethod
    def from_landmarks(
        cls, landmarks: np.ndarray, score: float, image_size: tuple[int, int]
    ) -> Face:
        pts = np.asarray(landmarks, dtype=np.float32)
        if pts.shape != (NUM_LANDMARKS, 3):  # checked here too: the bbox below needs 2 columns
            raise LandmarkError(f"landmarks must be ({NUM_LANDMARKS}, 3), got {pts.shape}")
        bbox = np.concatenate([pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)]).astype(np.float32)
        return cls(landmarks=pts, bbox=bbox, score=float(score), image_size=image_size)


# Wire layout of one NormalizedLandmark holding exactly x, y, z: a length-delimited field
# (0x0a, 15) of three fixed32 floats tagged 0x0d, 0x15, 0x1d. Reading the serialized list with
# numpy is ~20x faster than 478 Python attribute reads; any other layout takes the slow path.
_LM_RECORD = 17
_LM_TAGS = np.array([0x0A, 0x0F, 0x0D, 0x15, 0x1D], dtype=np.uint8)
_LM_TAG_COLS = np.array([0, 1, 2, 7, 12])


def _landmarks_array(landmark_list: Any, width: int, height: int) -> np.ndarray:
    """(n, 3) float32 pixel x, y and width-scaled z of a NormalizedLandmarkList."""
    raw = np.frombuffer(landmark_list.SerializeToString(), dtype=np.uint8)
    n = len(landmark_list.landmark)
    if raw.size == n * _LM_RECORD:
        rec = raw.reshape(n, _LM_RECORD)
        if np.array_equal(rec[:, _LM_TAG_COLS], np.broadcast_to(_LM_TAGS, (n, 5))):
            xyz = np.ascontiguousarray(rec[:, [3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16]])
            arr = xyz.view("<f4").reshape(n, 3).astype(np.float32)
            return arr * np.array([width, height, width], dtype=np.float32)
    arr = np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float32)
    return arr * np.array([width, height, width], dtype=np.float32)


def _mediapipe_to_faces(result: Any, width: int, height: int, scores: list[float]) -> list[Face]:
    """Adapter from the legacy solution's protobuf output to Face results."""
    faces: list[Face] = []
    for i, lm in enumerate(result.multi_face_landmarks or []):
        if len(lm.landmark) != NUM_LANDMARKS:
            continue  # only possible without iris refinement; the Face type requires 478
        arr = _landmarks_array(lm, width, height)
        score = scores[i] if i < len(scores) else 1.0
        faces.append(Face.from_landmarks(arr, score, (width, height)))
    return faces


def _detection_boxes(detections: Any, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, 4) pixel boxes and (k,) scores of the face detector's output (empty when it idled)."""
    boxes, scores = [], []
    for d in detections or []:
        r = d.location_data.relative_bounding_box
        boxes.append((r.xmin * width, r.ymin * height, (r.xmin + r.width) * width,
                      (r.ymin + r.height) * height))
        scores.append(d.score[0] if len(d.score) else 0.0)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64)


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over the smaller area of (n, 4) and (m, 4) x0, y0, x1, y1 boxes.

    Not IoU: a detector box covers only the inner face, so it lies inside the landmark box.
    """
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0.0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


# Landmark backends: name -> "module:class", a FaceTracker subclass imported on first use.
BACKENDS = {
    "mediapipe": "vision.landmarks:FaceTracker",
    "onnx": "vision.landmarks_onnx.tracker:OnnxFaceTracker",
}


def _backend_class(name: str) -> type[FaceTracker]:
    import importlib

    if name not in BACKENDS:
        raise OptionsError(f"unknown landmark backend {name!r}; one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    found: type[FaceTracker] = getattr(importlib.import_module(module), cls)
    return found


def _face_mesh_solution(options: FaceTrackerOptions) -> Any:
    """The legacy face-mesh graph, also observing its `face_detections` stream for scores."""
    from mediapipe.python.solution_base import SolutionBase  # heavy import, kept lazy
    from mediapipe.python.solutions import face_mesh

    return SolutionBase(
        binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
        side_inputs={
            "num_faces": options.max_faces,
            "with_attention": True,
            "use_prev_landmarks": options.running_mode is RunningMode.VIDEO,
        },
        calculator_params={
            "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
            "TensorsToDetectionsCalculator.min_score_thresh": options.min_detection_confidence,
            "facelandmarkcpu__ThresholdingCalculator.threshold": options.min_tracking_confidence,
        },
        outputs=["multi_face_landmarks", "face_detections"],
    )


class FaceTracker:
    """Wraps mediapipe.solutions.face_mesh behind a Tasks-style API.

    One tracker per video stream (it keeps tracking state); not safe to share across threads
    concurrently, so calls are serialised by a lock.

    `FaceTracker(options)` builds the backend that options.backend names (a subclass).
    """

    def __new__(cls, options: FaceTrackerOptions | None = None) -> FaceTracker:
        backend = (options or FaceTrackerOptions()).backend
        if cls is FaceTracker and backend != "mediapipe":
            cls = _backend_class(backend)
        return super().__new__(cls)

    @property
    def provider(self) -> str:
        """Where the landmark models run: MediaPipe's graph runs on the CPU."""
        return "mediapipe-cpu"

    def __init__(self, options: FaceTrackerOptions | None = None) -> None:
        self.options = options or FaceTrackerOptions()
        if not self.options.refine_landmarks:
            raise OptionsError("refine_landmarks must be True: Face requires the 10 iris points")
        if self.options.search_after_lost < 1:
            raise OptionsError("search_after_lost must be >= 1")
        self._mesh = _face_mesh_solution(self.options)
        # Built on first need: the full-range detector and an IMAGE-mode mesh for crops.
        self._detector: FullRangeDetector | None = None
        self._crop_mesh: Any = None
        self._lost = 0  # VIDEO: consecutive frames without a face
        self._roi: np.ndarray | None = None  # VIDEO: landmark box of a face found on a crop
        self._lock = threading.Lock()
        self._closed = False
        # Bounding boxes and scores of the faces returned last frame: while the graph tracks
        # (the detector does not run), each face keeps the detection score it was found with.
        self._prev_boxes = np.zeros((0, 4))
        self._prev_scores = np.zeros(0)

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
            result = self._mesh.process({"image": rgb})
            faces = _mediapipe_to_faces(result, w, h, [])
            scores = self._scores(faces, *_detection_boxes(result.face_detections, w, h))
            faces = [dataclasses.replace(f, score=s) for f, s in zip(faces, scores, strict=True)]
            if self.options.small_faces:
                faces = self._small_faces(frame, faces)
            self._prev_boxes = np.array([f.bbox for f in faces], dtype=np.float64).reshape(-1, 4)
            self._prev_scores = np.array([f.score for f in faces], dtype=np.float64)
        return faces

    def _small_faces(self, frame: np.ndarray, faces: list[Face]) -> list[Face]:
        """Faces the mesh's own detector missed, found by the full-range one on crops."""
        opts = self.options
        if opts.running_mode is RunningMode.IMAGE:
            faces = [self._refine(frame, f) for f in faces]
            if len(faces) >= opts.max_faces:
                return faces
            return faces + self._search(frame, faces, opts.max_faces - len(faces))
        if faces:
            self._lost, self._roi = 0, None
            return faces
        self._lost += 1
        if self._roi is not None:  # a face found on a crop last frame: follow it there
            x0, y0, x1, y1 = self._roi
            found = self._mesh_on_crop(
                frame, face_crop(frame, (x0, y0, x1, y1), _ROI_MARGIN, opts.detector.crop_size),
                None)
            if found is not None:
                self._roi = found.bbox.astype(np.float64)
                return [found]
            self._roi = None
        if self._lost % opts.search_after_lost:
            return []
        out = self._search(frame, [], 1)
        self._roi = out[0].bbox.astype(np.float64) if out else None
        return out

    def _refine(self, frame: np.ndarray, face: Face) -> Face:
        """A small face again, on an upscaled crop around its landmarks (IMAGE mode)."""
        x0, y0, x1, y1 = (float(v) for v in face.bbox)
        if x1 - x0 >= self.options.refine_below * max(frame.shape[:2]):
            return face
        crop = face_crop(frame, (x0, y0, x1, y1), _ROI_MARGIN, self.options.detector.crop_size)
        found = self._mesh_on_crop(frame, crop, face.score)
        return face if found is None else found

    def _search(self, frame: np.ndarray, have: list[Face], n: int) -> list[Face]:
        if self._detector is None:
            self._detector = FullRangeDetector(self.options.detector)
        d = self.options.detector
        boxes = np.array([f.bbox for f in have], dtype=np.float64).reshape(-1, 4)
        out: list[Face] = []
        for det in self._detector.detect(frame, max_faces=n + len(have)):
            if len(out) >= n:
                break
            box = np.array(det.box, dtype=np.float64)[None, :]
            if len(boxes) and float(_overlap(box, boxes).max()) > 0.5:
                continue  # a face the mesh already has
            face = self._mesh_on_crop(frame, face_crop(frame, det.box, d.crop_margin,
                                                       d.crop_size), det.score)
            if face is not None:
                out.append(face)
                boxes = np.vstack([boxes, face.bbox[None, :].astype(np.float64)])
        return out

    def _mesh_on_crop(self, frame: np.ndarray, crop: FaceCrop, score: float | None
                      ) -> Face | None:
        """The mesh on one crop (IMAGE mode, one face), landmarks mapped back to the frame."""
        if self._crop_mesh is None:
            self._crop_mesh = _face_mesh_solution(dataclasses.replace(
                self.options, running_mode=RunningMode.IMAGE, max_faces=1))
        size = crop.image.shape[1]
        rgb = cv2.cvtColor(crop.image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        result = self._crop_mesh.process({"image": rgb})
        found = _mediapipe_to_faces(result, size, size, [])
        if not found:
            return None
        if score is None:  # no full-range box: the crop's own detection score
            _, det_scores = _detection_boxes(result.face_detections, size, size)
            score = (float(det_scores.max()) if len(det_scores)
                     else self.options.min_tracking_confidence)
        h, w = frame.shape[:2]
        return Face.from_landmarks(crop.to_frame(found[0].landmarks), score, (w, h))

    def _scores(self, faces: list[Face], det_boxes: np.ndarray, det_scores: np.ndarray
                ) -> list[float]:
        """Presence score per face: the matching detection's score, else the carried one."""
        if not faces:
            return []
        boxes = np.array([f.bbox for f in faces], dtype=np.float64)
        out = np.full(len(faces), self.options.min_tracking_confidence, dtype=np.float64)
        for ref_boxes, ref_scores in ((self._prev_boxes, self._prev_scores),
                                      (det_boxes, det_scores)):  # detections win: applied last
            if len(ref_boxes):
                overlap = _overlap(boxes, ref_boxes)
                best = overlap.argmax(axis=1)
                hit = overlap[np.arange(len(faces)), best] > 0.5
                out[hit] = ref_scores[best[hit]]
        return [float(v) for v in out]

    def close(self) -> None:
        if not self._closed:
            self._mesh.close()
            if self._crop_mesh is not None:
                self._crop_mesh.close()
            if self._detector is not None:
                self._detector.close()
            self._closed = True

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
