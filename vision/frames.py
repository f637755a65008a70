"""Decode, validate and encode frames; every bad input becomes a typed FrameError."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.errors import FrameError, FrameTooLargeError

DEFAULT_MAX_PIXELS = 4096 * 4096
MIN_SIDE = 16


@dataclass(frozen=True)
class FrameLimits:
    """What a frame may be: at most max_pixels, each side at least min_side."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = MIN_SIDE


def _check_size(height: int, width: int, limits: FrameLimits) -> None:
    if height * width > limits.max_pixels:
        raise FrameTooLargeError(
            f"frame is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels}"
        )
    if min(height, width) < limits.min_side:
        raise FrameError(f"frame is {width}x{height}; each side must be >= {limits.min_side}")


def to_bgr(frame: np.ndarray, limits: FrameLimits = FrameLimits()) -> np.ndarray:
    """Return a contiguous uint8 (H, W, 3) BGR view of a gray, BGR or BGRA array."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.ndim == 3 and frame.shape[2] == 1:
        frame = cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    elif not (frame.ndim == 3 and frame.shape[2] == 3):
        raise FrameError(f"frame shape must be (H, W), (H, W, 3) or (H, W, 4), got {frame.shape}")
    _check_size(frame.shape[0], frame.shape[1], limits)
    return np.ascontiguousarray(frame)


def decode(data: bytes, limits: FrameLimits = FrameLimits()) -> np.ndarray:
    """Decode JPEG/PNG/WebP bytes to a BGR frame, checking the pixel limit before decoding."""
    if not data:
        raise FrameError("image is empty (0 bytes)")
    buf = np.frombuffer(data, dtype=np.uint8)
    # Read the header first so a decompression bomb is refused before it is decoded.
    header = _peek_size(data)
    if header is not None:
        _check_size(header[1], header[0], limits)
    # JPEGs from phones store pixels as the sensor saw them plus an EXIF orientation; only
    # IMREAD_COLOR applies it (IMREAD_UNCHANGED, kept for PNG alpha and 16 bits, ignores it).
    flags = cv2.IMREAD_COLOR if data[:2] == b"\xff\xd8" else cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(buf, flags)
    if img is None:
        raise FrameError("image could not be decoded (corrupt or not JPEG/PNG/WebP)")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    return to_bgr(img, limits)


def _peek_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding pixels, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
                h = int.from_bytes(data[i + 5 : i + 7], "big")
                w = int.from_bytes(data[i + 7 : i + 9], "big")
                return w, h
            i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP's first chunk (VP8X canvas, VP8 frame or VP8L header)."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w = int.from_bytes(data[26:28], "little") & 0x3FFF
        h = int.from_bytes(data[28:30], "little") & 0x3FFF
        return w, h
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """Encode a BGR frame as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FrameError("JPEG encoding failed")
    return buf.tobytes()
