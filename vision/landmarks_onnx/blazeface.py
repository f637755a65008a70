"""MediaPipe's BlazeFace short-range detector around its ONNX model: SSD anchors, box decoding,
sigmoid scores and weighted non-max suppression, as face_detection_short_range.pbtxt sets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

INPUT = 128
NUM_KEYPOINTS = 6
# SsdAnchorsCalculatorOptions of the short-range model
_STRIDES = (8, 16, 16, 16)
# (min_scale 0.1484375, max_scale 0.75 only size anchors; fixed_anchor_size makes them 1x1)
_SCORE_CLIP = 100.0
NMS_IOU = 0.3


@cache
def anchors() -> np.ndarray:
    """(896, 2) anchor centres (x, y) normalised to the input; fixed size 1x1."""
    out: list[tuple[float, float]] = []
    layer = 0
    n = len(_STRIDES)
    while layer < n:
        per_cell = 0
        last = layer
        while last < n and _STRIDES[last] == _STRIDES[layer]:
            per_cell += 2  # aspect ratio 1.0 + the interpolated scale (also 1.0)
            last += 1
        side = int(np.ceil(INPUT / _STRIDES[layer]))
        for y in range(side):
            for x in range(side):
                out += [((x + 0.5) / side, (y + 0.5) / side)] * per_cell
        layer = last
    return np.array(out, dtype=np.float32)


@dataclass(frozen=True)
class RawDetection:
    """One face in frame pixels: box (x0, y0, x1, y1), 6 keypoints (x, y), score."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float


def warp_rect(rgb: np.ndarray, cx: float, cy: float, width: float, height: float,
              angle: float, out_w: int, out_h: int, border: int) -> np.ndarray:
    """The rotated rectangle (centre, size, angle in radians) warped to out_w x out_h, exactly
    as MediaPipe's ImageToTensorCalculator on the CPU does it (cv::boxPoints,
    getPerspectiveTransform in float32, warpPerspective bilinear): a warpAffine with the same
    matrix rounds its sample positions differently, which moves hard faces' landmarks by
    pixels. uint8 out."""
    src = cv2.boxPoints(((float(cx), float(cy)), (float(width), float(height)),
                         float(np.degrees(angle))))
    dst = np.array([[0, out_h], [0, 0], [out_w, 0], [out_w, out_h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src.astype(np.float32), dst)
    return cv2.warpPerspective(rgb, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                               borderMode=border, borderValue=(0, 0, 0))


def letterbox(rgb: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """The frame padded to a square with zeros and scaled to 128x128, in [-1, 1] (NHWC) as
    MediaPipe's ImageToTensorCalculator (keep_aspect_ratio, BORDER_ZERO) makes it; returns the
    tensor and the square's left, top and side in frame pixels."""
    h, w = rgb.shape[:2]
    side = float(max(w, h))
    x0, y0 = (w - side) / 2, (h - side) / 2
    img = warp_rect(rgb, w / 2, h / 2, side, side, 0.0, INPUT, INPUT, cv2.BORDER_CONSTANT)
    return img.astype(np.float32) * (2.0 / 255.0) - 1.0, x0, y0, side


def decode(regressors: np.ndarray, scores: np.ndarray, min_score: float,
           x0: float, y0: float, side: float) -> list[RawDetection]:
    """One image's (896, 16) regressors and (896, 1) logits -> detections in frame pixels,
    weighted-NMS merged, best first."""
    logits = np.clip(scores.reshape(-1).astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP)
    prob = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(prob >= min_score)
    if keep.size == 0:
        return []
    a = anchors()[keep].astype(np.float64)
    r = regressors[keep].astype(np.float64) / INPUT
    cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
    bw, bh = r[:, 2], r[:, 3]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    kps = r[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + a[:, None, :]
    out = []
    for box, kp, score in weighted_nms(boxes, kps, prob[keep], NMS_IOU):
        out.append(RawDetection(
            box=(box * side + np.array([x0, y0, x0, y0])).astype(np.float64),
            keypoints=kp * side + np.array([x0, y0]), score=score))
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=1)
    area = (box[2:] - box[:2]).prod()
    areas = (boxes[:, 2:] - boxes[:, :2]).prod(axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float
                 ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: each kept box is the score-weighted mean of
    the boxes (and keypoints) overlapping the best remaining one by more than `iou`; it keeps
    the best one's score."""
    order = np.argsort(-scores, kind="stable")
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    remaining = np.arange(len(scores))
    out = []
    while remaining.size:
        top = remaining[0]
        sim = _iou(boxes[top], boxes[remaining])
        cand = remaining[sim > iou]
        if cand.size == 0 or cand[0] != top:
            cand = np.concatenate([[top], cand[cand != top]])
        remaining = remaining[sim <= iou]
        remaining = remaining[remaining != top]
        wts = scores[cand][:, None]
        box = (boxes[cand] * wts).sum(axis=0) / wts.sum()
        kp = (kps[cand] * wts[:, :, None]).sum(axis=0) / wts.sum()
        out.append((box, kp, float(scores[top])))
    return out
