"""Small and distant faces: MediaPipe's full-range face detector over the frame and its tiles,
and the square, upscaled crops the face mesh is run on when it finds no face by itself.

The face-mesh graph carries the short-range detector (faces within about 2 m, 128x128 input):
a face about 100 px wide in a 1024 px photo is too small for it. The full-range detector
(`face_detection_full_range`, same wheel, 192x192 input) sees farther, but on a whole large
frame a small face still shrinks to a dozen input pixels, so it also runs on half-overlapping
tiles half the frame's short side wide. Each box found is cropped square with margin, scaled
so the face is a comfortable size for the mesh, and the mesh's landmarks are mapped back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class DetectorOptions:
    min_score: float = 0.5
    tile_min_side: int = 480  # frames whose short side is at least this are also tiled
    nms_overlap: float = 0.3  # boxes overlapping more than this (IoU) are one face
    crop_margin: float = 2.4  # crop side = this x the detector box's longer side
    crop_size: int = 384  # crop side in pixels after scaling (the mesh's input)


@dataclass(frozen=True)
class Detection:
    """One face box in frame pixels (x0, y0, x1, y1) and the detector's score."""

    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class FaceCrop:
    """A square crop of the frame around a face, scaled to `size` x `size` pixels.

    Frame pixel x (pixel-index coordinates) = x0 + (u + 0.5) * scale - 0.5 for crop pixel u;
    in MediaPipe's convention (pixel centres at +0.5) simply X = x0 + U * scale, and z scales
    with x: landmarks are mapped back by `to_frame`.
    """

    image: np.ndarray
    x0: int
    y0: int
    scale: float  # frame pixels per crop pixel

    def to_frame(self, landmarks: np.ndarray) -> np.ndarray:
        """(n, 3) crop landmarks (x, y pixels, z in x's scale) -> frame landmarks."""
        out = np.asarray(landmarks, dtype=np.float64) * self.scale
        out[:, 0] += self.x0
        out[:, 1] += self.y0
        return out.astype(np.float32)


def _tiles(width: int, height: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of side x side tiles covering the frame, overlapping by about half."""

    def starts(extent: int) -> np.ndarray:
        if extent <= side:
            return np.zeros(1, int)
        n = int(np.ceil((extent - side) / (side / 2))) + 1
        return np.linspace(0, extent - side, n).round().astype(int)

    return [(int(x), int(y)) for y in starts(height) for x in starts(width)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo = np.maximum(a[:2], b[:2])
    hi = np.minimum(a[2:], b[2:])
    inter = float(np.clip(hi - lo, 0, None).prod())
    union = float((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod()) - inter
    return inter / max(union, 1e-9)


class FullRangeDetector:
    """`mediapipe.solutions.face_detection` with `model_selection=1` (full range), run on the
    whole frame and, for large frames, on half-overlapping tiles; boxes merged by NMS.

    Not safe to share across threads concurrently: calls are serialised by a lock.
    """

    def __init__(self, options: DetectorOptions | None = None) -> None:
        from mediapipe.python.solutions import face_detection  # heavy import, kept lazy

        self.options = options or DetectorOptions()
        self._det: Any = face_detection.FaceDetection(
            min_detection_confidence=self.options.min_score, model_selection=1)
        self._lock = threading.Lock()

    def _run(self, rgb: np.ndarray, x: int, y: int) -> list[Detection]:
        h, w = rgb.shape[:2]
        out = []
        for d in self._det.process(rgb).detections or []:
            r = d.location_data.relative_bounding_box
            box = (x + r.xmin * w, y + r.ymin * h, x + (r.xmin + r.width) * w,
                   y + (r.ymin + r.height) * h)
            out.append(Detection(box, float(d.score[0]) if len(d.score) else 0.0))
        return out

    def detect(self, frame_bgr: np.ndarray, max_faces: int = 1) -> list[Detection]:
        """Face boxes, best first, at most max_faces."""
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        found: list[Detection] = []
        with self._lock:
            found += self._run(rgb, 0, 0)
            if min(w, h) >= self.options.tile_min_side:
                side = min(w, h) // 2
                for x, y in _tiles(w, h, side):
                    found += self._run(np.ascontiguousarray(rgb[y:y + side, x:x + side]), x, y)
        found.sort(key=lambda d: -d.score)
        kept: list[Detection] = []
        for d in found:
            if all(_iou(np.array(d.box), np.array(k.box)) <= self.options.nms_overlap
                   for k in kept):
                kept.append(d)
        return kept[:max_faces]

    def close(self) -> None:
        self._det.close()


def face_crop(frame_bgr: np.ndarray, box: tuple[float, float, float, float],
              margin: float, size: int) -> FaceCrop:
    """Square crop `margin` x the box's longer side around its centre, scaled to size x size;
    parts outside the frame are filled by replicating its border."""
    x0, y0, x1, y1 = box
    side = max(round(margin * max(x1 - x0, y1 - y0)), 8)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    left, top = round(cx - side / 2), round(cy - side / 2)
    h, w = frame_bgr.shape[:2]
    pad = (max(-top, 0), max(top + side - h, 0), max(-left, 0), max(left + side - w, 0))
    region = frame_bgr[max(top, 0):min(top + side, h), max(left, 0):min(left + side, w)]
    if any(pad):
        region = cv2.copyMakeBorder(region, *pad, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    image = cv2.resize(region, (size, size), interpolation=interp)
    return FaceCrop(image=image, x0=left, y0=top, scale=side / size)


__all__ = ["Detection", "DetectorOptions", "FaceCrop", "FullRangeDetector", "face_crop"]
