"""libjpeg-turbo (simplejpeg) JPEG decode and encode: DCT-domain downscaling, EXIF orientation."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

try:  # a wheel that bundles libjpeg-turbo; without it frames.py falls back to OpenCV
    import simplejpeg as _sj
except ImportError:  # pragma: no cover - the lock installs it
    _sj = None

EXIF_ORIENTATION_TAG = 0x0112
_SOS, _APP1 = 0xDA, 0xE1


def available() -> bool:
    return _sj is not None


def dct_factor(width: int, height: int, max_side: int | None) -> int:
    """The largest of 1, 2, 4, 8 dividing the frame while its long side stays >= max_side.

    libjpeg scales by n/8 inside the inverse DCT, so a 1920x1080 frame for a 1280 pipeline
    is only decoded at the cheapest size that still covers it (here full size: 960 < 1280).
    """
    if not max_side or max_side <= 0:
        return 1
    long_side, factor = max(width, height), 1
    while factor < 8 and -(-long_side // (factor * 2)) >= max_side:
        factor *= 2
    return factor


def decode_bgr(data: bytes, width: int, height: int, factor: int = 1) -> np.ndarray | None:
    """Decoded BGR pixels as stored (no EXIF turn), 1/factor of the size; None when libjpeg-turbo
    reports any problem (truncated, CMYK, arithmetic...): the caller then uses OpenCV, which
    keeps today's behaviour for every odd file."""
    if _sj is None:
        return None
    want_w, want_h = -(-width // factor), -(-height // factor)
    try:
        img: Any = _sj.decode_jpeg(data, colorspace="BGR", min_width=want_w, min_height=want_h,
                                   strict=True)
    except (ValueError, RuntimeError):
        return None
    if img.shape[:2] != (want_h, want_w):
        return None
    return np.ascontiguousarray(img)


def encode_bgr(frame: np.ndarray, quality: int) -> bytes | None:
    """JPEG bytes (4:2:0, as OpenCV's default) or None without libjpeg-turbo bindings.

    Kept for the codec benchmark: frames.encode_jpeg stays on OpenCV, which measured faster."""
    if _sj is None:
        return None
    return bytes(_sj.encode_jpeg(np.ascontiguousarray(frame), quality=int(quality),
                                 colorspace="BGR", colorsubsampling="420"))


def exif_orientation(data: bytes) -> int:
    """The EXIF Orientation (1..8) of a JPEG's first Exif APP1 segment; 1 when absent or bad."""
    n, i = len(data), 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            return 1
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == _SOS:
            return 1
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return 1
        if marker == _APP1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            return _tiff_orientation(data[i + 10 : i + 2 + length])
        i += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1

    def u(off: int, size: int) -> int:
        return int.from_bytes(tiff[off : off + size], order)  # type: ignore[arg-type]

    ifd = u(4, 4)
    if ifd + 2 > len(tiff):
        return 1
    for k in range(min(u(ifd, 2), 512)):
        e = ifd + 2 + 12 * k
        if e + 12 > len(tiff):
            return 1
        if u(e, 2) == EXIF_ORIENTATION_TAG and u(e + 2, 2) == 3:  # SHORT
            value = u(e + 8, 2)
            return value if 1 <= value <= 8 else 1
    return 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright exactly as OpenCV's IMREAD_COLOR does (its ExifTransform)."""
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.flip(img, -1)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation in (5, 6, 7, 8):
        t = cv2.transpose(img)
        flip = {5: None, 6: 1, 7: -1, 8: 0}[orientation]
        return t if flip is None else cv2.flip(t, flip)
    return img
