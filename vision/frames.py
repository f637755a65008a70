"""Decode, validate and encode frames; every bad input becomes a typed FrameError."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision import jpeg_codec
from vision.errors import FrameError, FrameTooLargeError
from vision.frame_header import JPEG, ImageHeader, cross_check, read_header

DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_SIDE = 8192
# The face mesh's bundled OpenCV aborts the whole process in remap() when a side reaches
# SHRT_MAX (32767), so no configuration may let such a frame through.
HARD_MAX_SIDE = 32766
MIN_SIDE = 16


@dataclass(frozen=True)
class FrameLimits:
    """What a frame may be: at most max_pixels, each side in min_side..max_side.

    max_side is clamped to HARD_MAX_SIDE (32766) whatever is configured.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = MIN_SIDE
    max_side: int = DEFAULT_MAX_SIDE

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_side", min(int(self.max_side), HARD_MAX_SIDE))


def _check_size(height: int, width: int, limits: FrameLimits) -> None:
    if height * width > limits.max_pixels:
        raise FrameTooLargeError(
            f"frame is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels}"
        )
    if max(height, width) > limits.max_side:
        raise FrameTooLargeError(
            f"frame is {width}x{height}; each side must be <= {limits.max_side}"
        )
    if min(height, width) < limits.min_side:
        raise FrameError(f"frame is {width}x{height}; each side must be >= {limits.min_side}")


def to_bgr(frame: np.ndarray, limits: FrameLimits = FrameLimits()) -> np.ndarray:
    """Return a contiguous uint8 (H, W, 3) BGR view of a gray, BGR or BGRA array."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype must be uint8, got {frame.dtype}")
    if frame.ndim not in (2, 3):
        raise FrameError(f"frame shape must be (H, W), (H, W, 3) or (H, W, 4), got {frame.shape}")
    # Before any conversion: cvtColor itself would copy an oversized array.
    _check_size(frame.shape[0], frame.shape[1], limits)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 1:
        frame = cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    elif frame.shape[2] != 3:
        raise FrameError(f"frame shape must be (H, W), (H, W, 3) or (H, W, 4), got {frame.shape}")
    return np.ascontiguousarray(frame)


def decode(data: bytes, limits: FrameLimits = FrameLimits(), *, max_side: int | None = None
           ) -> np.ndarray:
    """Decode JPEG/PNG/WebP bytes to a BGR frame; nothing is decoded before its header passes.

    max_side: the processing size; a larger frame comes back with its long side scaled to it
    (a JPEG by libjpeg-turbo inside the inverse DCT first, at 1/2, 1/4 or 1/8, then by area
    resampling for the rest). JPEGs decode with libjpeg-turbo (simplejpeg), applying the EXIF
    orientation as OpenCV does; PNG, WebP and any JPEG it refuses decode with OpenCV.

    Raises UnsupportedFormatError (any other format, by magic bytes), FrameTooLargeError (over
    a side or pixel limit), FrameError (no readable size, corrupt or truncated). An animated
    WebP gives its first frame.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FrameError(f"image must be bytes, got {type(data).__name__}")
    if not data:
        raise FrameError("image is empty (0 bytes)")
    data = bytes(data)
    header = read_header(data)
    _check_size(header.height, header.width, limits)
    if header.inner_size not in (None, (header.width, header.height)):
        raise FrameError("WebP canvas and bitstream declare different sizes")
    cross_check(data, header)
    img, factor = _decode_pixels(data, header, max_side)
    # The decoder, not the header, has the last word: an EXIF turn may swap the sides.
    want = sorted((-(-header.height // factor), -(-header.width // factor)))
    if sorted(img.shape[:2]) != want:
        raise FrameError(f"decoded {img.shape[1]}x{img.shape[0]} but the header declared "
                         f"{header.width}x{header.height}")
    if factor == 1:
        _check_size(img.shape[0], img.shape[1], limits)
    if img.dtype == np.uint16:
        img = np.right_shift(img, 8).astype(np.uint8)
    return _fit(to_bgr(img, limits), max_side)


def _fit(img: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    size = (max(round(w * s), 1), max(round(h * s), 1))
    # After DCT scaling at most 2x is left, where bilinear barely aliases; OpenCV's area
    # resampling at a fractional factor costs ~20 ms for a 1080p frame.
    inter = cv2.INTER_AREA if s <= 0.5 else cv2.INTER_LINEAR
    return cv2.resize(img, size, interpolation=inter)


def _decode_pixels(data: bytes, header: ImageHeader, max_side: int | None
                   ) -> tuple[np.ndarray, int]:
    """(pixels, DCT factor): libjpeg-turbo for JPEG, OpenCV for the rest and as the fallback."""
    factor = 1
    if header.format == JPEG:
        factor = jpeg_codec.dct_factor(header.width, header.height, max_side)
        img = jpeg_codec.decode_bgr(data, header.width, header.height, factor)
        if img is not None:
            return jpeg_codec.apply_orientation(img, jpeg_codec.exif_orientation(data)), factor
    # JPEGs from phones store pixels as the sensor saw them plus an EXIF orientation; only
    # IMREAD_COLOR applies it (IMREAD_UNCHANGED, kept for PNG alpha and 16 bits, ignores it).
    flags = cv2.IMREAD_COLOR if header.format == JPEG else cv2.IMREAD_UNCHANGED
    # OpenCV's reduced modes are the same DCT scaling (and still apply EXIF).
    flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}.get(factor, flags)
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise FrameError("image could not be decoded (corrupt or truncated)") from exc
    if img is None:
        raise FrameError("image could not be decoded (corrupt or truncated)")
    return img, factor


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """Encode a BGR frame as JPEG bytes.

    OpenCV, not simplejpeg: both wrap libjpeg-turbo with the same settings, and OpenCV's was
    4-7 % faster on the same frames (`python -m benchmarks.codec`, encode rows).
    """
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FrameError("JPEG encoding failed")
    return buf.tobytes()
