"""Image format sniffing and header sizes (JPEG, PNG, WebP) read without decoding any pixel."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from vision.errors import FrameError, UnsupportedFormatError

JPEG, PNG, WEBP = "jpeg", "png", "webp"
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
# Every start-of-frame marker has the same layout (baseline, extended, progressive, lossless,
# hierarchical, arithmetic); C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0..7 carry no length
# Pillow opens a JPEG with a multi-picture (MP) extension as "MPO"; it is still a JPEG.
_PIL_FORMATS = {"JPEG": JPEG, "MPO": JPEG, "PNG": PNG, "WEBP": WEBP}
NO_SIZE = "could not read the image size from its header"


@dataclass(frozen=True)
class ImageHeader:
    """What the header declares: format, canvas size, and whether it is an animation."""

    format: str
    width: int
    height: int
    animated: bool = False
    # A WebP VP8X canvas and its still bitstream each declare a size; both must agree.
    inner_size: tuple[int, int] | None = None


def sniff(data: bytes) -> str | None:
    """The allowed format the magic bytes announce, or None (whatever a content type said)."""
    if data[:2] == b"\xff\xd8":
        return JPEG
    if data[:8] == _PNG_SIG:
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def read_header(data: bytes) -> ImageHeader:
    """The declared format and size; UnsupportedFormatError or FrameError when not readable.

    The size comes from our own parser and must match Pillow's lazy header reader, so a file
    built to fool one parser (fill bytes, odd segments) is refused rather than decoded.
    """
    fmt = sniff(data)
    if fmt is None:
        raise UnsupportedFormatError("unsupported image format: only JPEG, PNG and WebP are "
                                     "accepted (checked by content, not by content type)")
    if fmt == JPEG:
        header = _jpeg(data)
    elif fmt == PNG:
        header = _png(data)
    else:
        header = _webp(data)
    if header is None or header.width <= 0 or header.height <= 0:
        raise FrameError(NO_SIZE)
    return header


def cross_check(data: bytes, header: ImageHeader) -> None:
    """Refuse unless Pillow's header reader sees the same format and size as ours."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Size limits are ours; Pillow's bomb warning must not turn into a test error.
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "WEBP"]) as im:
                fmt, size = _PIL_FORMATS.get(str(im.format)), im.size
    except Exception as exc:  # Pillow raises many types on bad headers
        raise FrameError(f"{NO_SIZE} ({type(exc).__name__})") from exc
    if fmt != header.format or tuple(size) != (header.width, header.height):
        raise FrameError(f"{NO_SIZE}: the header is ambiguous ({header.width}x{header.height} "
                         f"vs {size[0]}x{size[1]})")


def _u16be(data: bytes, i: int) -> int:
    return int.from_bytes(data[i : i + 2], "big")


def _jpeg(data: bytes) -> ImageHeader | None:
    """The frame size the way libjpeg finds it: skip junk to 0xFF, fill 0xFFs, then a marker."""
    n, i = len(data), 2
    size: tuple[int, int] | None = None
    while True:
        while i < n and data[i] != 0xFF:
            i += 1
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0x00 or marker in _STANDALONE:
            continue  # a stuffed 0xFF00 or a marker without a segment
        if marker in (0xD8, 0xD9):
            break  # a second SOI or EOI before any scan: nothing more to read
        if i + 2 > n or _u16be(data, i) < 2:
            break
        if marker == 0xDA:
            break  # start of scan: the frame header (if any) has been seen
        if marker in _SOF:
            if size is not None:
                raise FrameError("JPEG declares two frame headers")
            if i + 7 > n or _u16be(data, i) < 8:
                break
            size = (_u16be(data, i + 5), _u16be(data, i + 3))
        i += _u16be(data, i)
    return None if size is None else ImageHeader(JPEG, *size)


def _png(data: bytes) -> ImageHeader | None:
    """IHDR must be the first chunk (length 13); libpng refuses anything else."""
    if len(data) < 24 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    return ImageHeader(PNG, int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))


def _webp(data: bytes) -> ImageHeader | None:
    """Size from the first chunk; a VP8X canvas also names its still bitstream's size."""
    chunks = list(_riff_chunks(data))
    if not chunks:
        return None
    fourcc, payload = chunks[0]
    if fourcc != b"VP8X":
        size = _bitstream_size(fourcc, payload)
        return None if size is None else ImageHeader(WEBP, *size)
    if len(payload) < 10:
        return None
    animated = bool(payload[0] & 0x02)
    width = int.from_bytes(payload[4:7], "little") + 1
    height = int.from_bytes(payload[7:10], "little") + 1
    inner = None
    if not animated:
        found = [s for c, p in chunks[1:] if (s := _bitstream_size(c, p)) is not None]
        if not found:
            return None
        inner = found[0]
    return ImageHeader(WEBP, width, height, animated=animated, inner_size=inner)


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(fourcc, payload) of each RIFF chunk after 'WEBP'; a truncated last chunk is cut."""
    out: list[tuple[bytes, bytes]] = []
    i = 12
    while i + 8 <= len(data) and len(out) < 64:  # a still image needs only a few chunks
        size = int.from_bytes(data[i + 4 : i + 8], "little")
        out.append((data[i : i + 4], data[i + 8 : i + 8 + size]))
        i += 8 + size + (size & 1)
    return out


def _bitstream_size(fourcc: bytes, payload: bytes) -> tuple[int, int] | None:
    if fourcc == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        w = int.from_bytes(payload[6:8], "little") & 0x3FFF
        h = int.from_bytes(payload[8:10], "little") & 0x3FFF
        return w, h
    if fourcc == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None
