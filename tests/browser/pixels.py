"""Pixel checks for the browser tests: decode page images, find eyes and lips, compare regions."""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from vision.landmarks import FaceTracker, FaceTrackerOptions, RunningMode

# MediaPipe face-mesh indices: eye corners and lids, and the outer lip contour.
EYES = (33, 133, 159, 145, 362, 263, 386, 374)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181,
              91, 146)

# Blob -> base64 inside the page (the images never leave memory on the page side).
_B64 = """async (blob) => {
    const buf = new Uint8Array(await blob.arrayBuffer());
    let s = '';
    for (let i = 0; i < buf.length; i += 0x8000) {
      s += String.fromCharCode(...buf.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }"""
# A Blob held by the page at a dotted path under window.
BLOB_TO_B64 = f"""async (path) => {{
  const b64 = {_B64};
  const blob = path.split('.').reduce((o, k) => o?.[k], window);
  return blob ? b64(blob) : null;
}}"""
# The last (sent frame, composited reply, its JSON) the page holds, read in one go.
PAIR_JS = f"""async () => {{
  const b64 = {_B64};
  const pair = window.tryon.lastPair;
  if (!pair || !pair.sent) return null;
  return {{ sent: await b64(pair.sent), received: await b64(pair.received), meta: pair.meta }};
}}"""


def decode_b64(data: str) -> np.ndarray:
    arr = np.frombuffer(base64.b64decode(data), np.uint8)
    img = cv2.imdecode(arr, cv2.IMREAD_COLOR)
    assert img is not None, "page image did not decode"
    return img


def page_image(page: Any, path: str) -> np.ndarray:
    """A Blob on the page (dotted path under window) as a BGR array."""
    data = page.evaluate(BLOB_TO_B64, path)
    assert data, f"no image at window.{path}"
    return decode_b64(data)


class Landmarker:
    """The project's real face tracker, used to find where eyes and lips are in a frame."""

    def __init__(self) -> None:
        self.tracker = FaceTracker(FaceTrackerOptions(running_mode=RunningMode.IMAGE))

    def points(self, frame: np.ndarray) -> np.ndarray:
        faces = self.tracker.process(frame)
        assert faces, "no face found in the frame the page sent"
        return faces[0].xy

    def close(self) -> None:
        self.tracker.close()


def box(points: np.ndarray, ids: tuple[int, ...], shape: tuple[int, ...], pad: float) -> tuple[
        slice, slice]:
    p = points[list(ids)]
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    px = (x1 - x0) * pad
    py = (y1 - y0) * pad
    h, w = shape[:2]
    return (slice(max(0, int(y0 - py)), min(h, int(y1 + py))),
            slice(max(0, int(x0 - px)), min(w, int(x1 + px))))


def lips_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[list(LIPS_OUTER)]).astype(np.int32)], 255)
    return mask > 0


def mean_abs_diff(a: np.ndarray, b: np.ndarray, region: Any) -> float:
    """Mean absolute per-channel difference inside region (a (rows, cols) slice pair or mask)."""
    assert a.shape == b.shape, f"images differ in size: {a.shape} vs {b.shape}"
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(d[region].mean())


def mean_color(img: np.ndarray, region: Any) -> np.ndarray:
    return img[region].reshape(-1, 3).mean(axis=0)
