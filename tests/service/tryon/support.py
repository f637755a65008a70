"""Helpers for the try-on tests: real frames in, images out (the server is the suite's)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def video_frames(path: Path, n: int, size: tuple[int, int] = (640, 480), step: int = 2,
                 start: int = 0) -> list[np.ndarray]:
    """n real frames (every `step`-th from `start`), resized to `size`."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    i = 0
    try:
        while len(frames) < n:
            ok, frame = cap.read()
            if not ok:
                break
            if i >= start and (i - start) % step == 0:
                frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
            i += 1
    finally:
        cap.release()
    return frames


def jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "server returned bytes that are not an image"
    return img
