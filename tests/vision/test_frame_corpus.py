"""A bad-frame corpus built here: giant sides, header tricks, other formats, odd pixel layouts."""

from __future__ import annotations

import io
import resource
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from vision.errors import FrameError, FrameTooLargeError, UnsupportedFormatError
from vision.frame_header import read_header
from vision.frames import HARD_MAX_SIDE, FrameLimits, decode, to_bgr

GIANT = [(32767, 16), (16, 32767), (40000, 16)]
SOF_MARKERS = [0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB, 0xCF]


def _image(h: int = 64, w: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx * 3 % 256, yy * 5 % 256, (xx + yy) % 256]).astype(np.uint8)


def _cv(ext: str, img: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def _pil(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _sof_at(jpeg: bytes) -> int:
    """Index of the SOF marker's 0xFF in a well-formed JPEG."""
    i = 2
    while jpeg[i + 1] not in SOF_MARKERS:
        i += 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    return i


def _jpeg_declaring(width: int, height: int, *, marker: int = 0xC0) -> bytes:
    data = bytearray(_cv(".jpg", _image(16, 16)))
    i = _sof_at(bytes(data))
    data[i + 1] = marker
    data[i + 5 : i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _png_declaring(width: int, height: int) -> bytes:
    data = bytearray(_cv(".png", _image(16, 16)))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid IHDR
    return bytes(data)


def _webp_declaring(width: int, height: int, animated: bool) -> bytes:
    """A VP8X canvas of width x height around a real 16x16 lossless bitstream."""
    inner = _cv(".webp", _image(16, 16), cv2.IMWRITE_WEBP_QUALITY, 101)[12:]
    vp8x = bytes([0x02 if animated else 0, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (
        height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + len(vp8x).to_bytes(4, "little") + vp8x + inner
    return b"RIFF" + len(body).to_bytes(4, "little") + body


class TestGiantSides:
    @pytest.mark.parametrize(("width", "height"), GIANT)
    @pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "webp_anim"])
    def test_side_over_the_limit_is_refused(self, fmt: str, width: int, height: int) -> None:
        data = {"jpeg": lambda: _jpeg_declaring(width, height),
                "png": lambda: _png_declaring(width, height),
                "webp": lambda: _webp_declaring(width, height, animated=False),
                "webp_anim": lambda: _webp_declaring(width, height, animated=True)}[fmt]()
        assert (read_header(data).width, read_header(data).height) == (width, height)
        # Even a server configured without a side limit never lets 32767 through.
        for limits in (FrameLimits(), FrameLimits(max_side=10**6, max_pixels=10**9)):
            with pytest.raises(FrameTooLargeError, match="each side must be <="):
                decode(data, limits)

    def test_max_side_is_clamped_below_shrt_max(self) -> None:
        assert FrameLimits(max_side=32767).max_side == HARD_MAX_SIDE == 32766
        assert FrameLimits().max_side == 8192

    def test_real_32766_wide_decodes_and_32767_does_not(self) -> None:
        limits = FrameLimits(max_side=10**6, max_pixels=10**9)
        ok = np.zeros((16, 32766, 3), np.uint8)
        assert decode(_cv(".png", ok), limits).shape == (16, 32766, 3)
        with pytest.raises(FrameTooLargeError):
            decode(_cv(".png", np.zeros((16, 32767, 3), np.uint8)), limits)

    @pytest.mark.parametrize("shape", [(16, 32767), (32767, 16, 3), (40000, 16, 4)])
    def test_arrays_passed_directly_are_checked(self, shape: tuple[int, ...]) -> None:
        with pytest.raises(FrameTooLargeError):
            to_bgr(np.zeros(shape, np.uint8), FrameLimits(max_side=10**6, max_pixels=10**9))


class TestHeaderTricks:
    @staticmethod
    def _bomb(pad: bytes) -> bytes:
        data = _jpeg_declaring(32000, 32000)
        return data[:2] + pad + data[2:]

    @pytest.mark.parametrize("pad", [
        b"\xff",  # one fill byte after SOI: the parser used to give up and decode anyway
        b"\xff" * 50,
        b"\xff\xfe\x00\x05abc",  # a COM segment
        b"\xff\xe1\x00\x04ab\xff\xee\x00\x02",  # APP1 and APP14 segments
        b"\xff\xd0\xff\x01",  # standalone RST0 and TEM markers
        b"\x00\x12garbage",  # junk before the next marker, which libjpeg skips
    ])
    def test_padded_bomb_refused_without_decoding(self, pad: bytes) -> None:
        data = self._bomb(pad)
        assert len(data) < 1000
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        try:
            with pytest.raises(FrameTooLargeError, match="32000x32000"):
                decode(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert peak < 1 << 20 and grown_kib < 100 * 1024  # a decode would take gigabytes

    @pytest.mark.parametrize("marker", SOF_MARKERS)
    def test_every_sof_kind_is_read(self, marker: int) -> None:
        with pytest.raises(FrameTooLargeError, match="20000x30000"):
            decode(_jpeg_declaring(20000, 30000, marker=marker))

    def test_progressive_jpeg_decodes(self) -> None:
        data = _pil(Image.fromarray(_image()), "JPEG", progressive=True)
        assert read_header(data).width == 80
        assert decode(data).shape == (64, 80, 3)

    def test_two_frame_headers_refused(self) -> None:
        data = _jpeg_declaring(16, 16)
        i = _sof_at(data)
        seg = data[i : i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")]
        with pytest.raises(FrameError, match="two frame headers"):
            decode(data[:i] + seg + seg + data[i + len(seg) :])

    def test_no_frame_header_refused(self) -> None:
        with pytest.raises(FrameError, match="could not read the image size"):
            decode(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9")

    def test_png_whose_first_chunk_is_not_ihdr(self) -> None:
        data = _cv(".png", _image())
        with pytest.raises(FrameError, match="could not read the image size"):
            decode(data[:8] + b"\x00\x00\x00\x00tEXt\x00\x00\x00\x00" + data[8:])

    def test_webp_canvas_disagreeing_with_its_bitstream(self) -> None:
        with pytest.raises(FrameError, match="different sizes"):
            decode(_webp_declaring(64, 64, animated=False))


class TestOtherFormats:
    @pytest.mark.parametrize("fmt", ["TIFF", "BMP", "GIF", "ICO", "PPM", "TGA"])
    def test_refused_by_magic_bytes(self, fmt: str) -> None:
        data = _pil(Image.fromarray(_image()), fmt)
        with pytest.raises(UnsupportedFormatError) as err:
            decode(data)
        assert err.value.code == "unsupported_media_type"

    def test_big_tiff_refused_without_decoding(self) -> None:
        # A small real TIFF whose width and length tags now say 30000 (the 1.9 GB attack).
        data = bytearray(_pil(Image.fromarray(_image()[:, :, 0]), "TIFF"))
        ifd = int.from_bytes(data[4:8], "little")
        for k in range(int.from_bytes(data[ifd : ifd + 2], "little")):
            entry = ifd + 2 + 12 * k
            if int.from_bytes(data[entry : entry + 2], "little") in (256, 257):
                data[entry + 8 : entry + 10] = (30000).to_bytes(2, "little")
        with pytest.raises(Image.DecompressionBombError, match="900000000 pixels"):
            Image.open(io.BytesIO(data))
        tracemalloc.start()
        try:
            with pytest.raises(UnsupportedFormatError):
                decode(bytes(data))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20

    @pytest.mark.parametrize("data", [b"", b"\x00", b"GIF89a", bytes(range(256)) * 4])
    def test_junk(self, data: bytes) -> None:
        with pytest.raises(FrameError):
            decode(data)

    @pytest.mark.parametrize("seed", range(20))
    def test_random_bytes_behind_each_magic(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        junk = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
        for magic in (b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x10\x00\x00WEBP"):
            with pytest.raises(FrameError):
                decode(magic + junk)


class TestPixelLayouts:
    def test_cmyk_jpeg(self) -> None:
        data = _pil(Image.fromarray(_image()).convert("CMYK"), "JPEG")
        assert decode(data).shape == (64, 80, 3)

    @pytest.mark.parametrize("channels", [1, 3, 4])
    def test_16_bit_png(self, channels: int) -> None:
        img = (np.random.default_rng(0).integers(0, 65536, (64, 80, channels))).astype(np.uint16)
        out = decode(_cv(".png", img))
        assert out.shape == (64, 80, 3) and out.dtype == np.uint8
        assert np.array_equal(out[:, :, 0], (img[:, :, 0] >> 8).astype(np.uint8))

    @pytest.mark.parametrize("mode", ["LA", "P", "PA", "1", "I;16"])
    def test_pillow_modes(self, mode: str) -> None:
        rgb = Image.fromarray(_image())
        img = rgb.convert("RGBA").convert("P") if mode == "PA" else rgb.convert(mode)
        out = decode(_pil(img, "PNG"))
        assert out.shape == (64, 80, 3) and out.dtype == np.uint8

    def test_animated_webp_gives_its_first_frame(self) -> None:
        frames = [Image.fromarray(_image()), Image.fromarray(255 - _image())]
        data = _pil(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True,
                    duration=100)
        assert read_header(data).animated
        out = decode(data)
        assert np.array_equal(out, cv2.cvtColor(_image(), cv2.COLOR_RGB2BGR))

    @pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
    @pytest.mark.parametrize("keep", [0.05, 0.2, 0.5, 0.9])
    def test_truncated(self, fmt: str, keep: float) -> None:
        noisy = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
        data = _cv(f".{fmt}", noisy)
        with pytest.raises(FrameError):
            decode(data[: int(len(data) * keep)])
