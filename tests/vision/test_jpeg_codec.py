"""libjpeg-turbo decode/encode: same pixels as OpenCV, EXIF turns, DCT downscaling, fallbacks."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vision import jpeg_codec
from vision.frames import decode, encode_jpeg

pytestmark = pytest.mark.skipif(not jpeg_codec.available(), reason="simplejpeg not installed")


def _cv_decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def _jpeg(img_bgr: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img_bgr[..., ::-1])).save(buf, format="JPEG", **save)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> np.ndarray:
    return cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))


def test_same_pixels_as_opencv(shared_data: Path) -> None:
    paths = sorted((shared_data / "faces").rglob("*.jp*g"))
    assert paths
    for path in paths:
        data = path.read_bytes()
        assert np.array_equal(decode(data), _cv_decode(data)), path.name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_opencv(photo: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[jpeg_codec.EXIF_ORIENTATION_TAG] = orientation
    data = _jpeg(photo[:200, :120], exif=exif, quality=92)
    assert jpeg_codec.exif_orientation(data) == orientation
    assert np.array_equal(decode(data), _cv_decode(data))


@pytest.mark.parametrize("junk", [b"Exif\x00\x00II", b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff",
                                  b"Exif\x00\x00II\x2a\x00\x08\x00\x00\x00\xff\xff"])
def test_bad_exif_means_upright(photo: np.ndarray, junk: bytes) -> None:
    data = _jpeg(photo[:64, :64])
    app1 = b"\xff\xe1" + (len(junk) + 2).to_bytes(2, "big") + junk
    data = data[:2] + app1 + data[2:]
    assert jpeg_codec.exif_orientation(data) == 1
    assert decode(data).shape == (64, 64, 3)


@pytest.mark.parametrize(("size", "max_side", "factor", "out"), [
    ((1920, 1080), 640, 2, (640, 360)),
    ((1920, 1080), 1280, 1, (1280, 720)),
    ((1280, 720), 1280, 1, (1280, 720)),
    ((2560, 1440), 320, 8, (320, 180)),
])
def test_dct_downscaling_to_processing_size(photo: np.ndarray, size: tuple[int, int],
                                            max_side: int, factor: int,
                                            out: tuple[int, int]) -> None:
    assert jpeg_codec.dct_factor(*size, max_side) == factor
    big = cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)
    data = _jpeg(big, quality=90)
    img = decode(data, max_side=max_side)
    assert (img.shape[1], img.shape[0]) == out
    # Close to decoding at full size and area-resizing: DCT scaling is a faithful shortcut.
    ref = cv2.resize(_cv_decode(data), out, interpolation=cv2.INTER_AREA)
    assert np.abs(img.astype(int) - ref).mean() < 2.5


def test_rotated_frame_scales_by_its_long_side(photo: np.ndarray) -> None:
    exif = Image.Exif()
    exif[jpeg_codec.EXIF_ORIENTATION_TAG] = 6
    data = _jpeg(cv2.resize(photo, (1600, 900)), exif=exif)
    assert decode(data, max_side=800).shape == (800, 450, 3)


def test_cmyk_jpeg_falls_back_to_opencv(photo: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(photo[:80, :96, ::-1].copy()).convert("CMYK").save(buf, format="JPEG")
    data = buf.getvalue()
    assert np.array_equal(decode(data), _cv_decode(data))


@pytest.mark.parametrize("encoder", ["frames", "simplejpeg"])
def test_encode_round_trip(photo: np.ndarray, encoder: str) -> None:
    data = encode_jpeg(photo, 90) if encoder == "frames" else jpeg_codec.encode_bgr(photo, 90)
    assert data is not None
    assert data[:2] == b"\xff\xd8"
    back = _cv_decode(data)
    assert back.shape == photo.shape
    assert np.abs(back.astype(int) - photo).mean() < 3.0
