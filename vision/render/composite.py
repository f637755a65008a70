"""Premultiplied-alpha compositing of a small overlay into a frame, with OpenCV, in place."""

from __future__ import annotations

import cv2
import numpy as np

from vision.errors import RenderError


def composite_premultiplied(frame_bgr: np.ndarray, premul_bgra: np.ndarray, x: int, y: int) -> None:
    """frame[y:y+h, x:x+w] = overlay + frame * (1 - alpha), uint8, only inside the box.

    The overlay must lie inside the frame (the renderer clips its box). Saturating uint8 OpenCV
    arithmetic on the box only: no full-frame float maths.
    """
    h, w = premul_bgra.shape[:2]
    roi = frame_bgr[y : y + h, x : x + w]
    if roi.shape[:2] != (h, w):
        raise RenderError(f"overlay {w}x{h} at ({x}, {y}) does not fit the frame")
    inv = cv2.cvtColor(255 - premul_bgra[..., 3], cv2.COLOR_GRAY2BGR)
    cv2.multiply(roi, inv, dst=roi, scale=1.0 / 255.0)
    cv2.add(roi, np.ascontiguousarray(premul_bgra[..., :3]), dst=roi)
