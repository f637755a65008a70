"""Frame decoding and validation: every bad input becomes a typed error or a valid frame."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.errors import FrameError, FrameTooLargeError, VisionError
from vision.frames import FrameLimits, decode, encode_jpeg, to_bgr


@pytest.fixture(scope="module")
def photo_bytes(shared_data: Path) -> bytes:
    return (shared_data / "faces" / "photos" / "obama.jpg").read_bytes()


@pytest.fixture(scope="module")
def photo(photo_bytes: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(photo_bytes, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


class TestDecodeBadInput:
    def test_empty_bytes(self) -> None:
        with pytest.raises(FrameError, match="empty"):
            decode(b"")

    @pytest.mark.parametrize("cut", ["truncated", "garbage_after_soi", "zeroed_body"])
    def test_corrupt_jpeg(self, photo_bytes: bytes, cut: str) -> None:
        data = {
            "truncated": photo_bytes[: len(photo_bytes) // 2],
            "garbage_after_soi": b"\xff\xd8" + photo_bytes[-4000:],
            "zeroed_body": photo_bytes[:800] + bytes(5000),
        }[cut]
        with pytest.raises(FrameError) as err:
            decode(data)
        assert err.value.code == "bad_frame"

    def test_one_pixel_image(self, photo: np.ndarray) -> None:
        with pytest.raises(FrameError, match="1x1"):
            decode(_png(photo[:1, :1]))

    def test_over_pixel_limit_refused_before_decoding(self, photo_bytes: bytes) -> None:
        with pytest.raises(FrameTooLargeError) as err:
            decode(photo_bytes, FrameLimits(max_pixels=640 * 480))
        assert err.value.code == "frame_too_large"
        assert isinstance(err.value, VisionError)

    def test_png_header_claiming_huge_size(self, photo: np.ndarray) -> None:
        # A decompression bomb's signature: a real PNG whose header claims 5000x5000 pixels.
        data = bytearray(_png(photo[:64, :64]))
        data[16:24] = (5000).to_bytes(4, "big") + (5000).to_bytes(4, "big")
        with pytest.raises(FrameTooLargeError, match="5000x5000"):
            decode(bytes(data))

    @pytest.mark.parametrize("quality", [80, 101])  # lossy VP8 and lossless VP8L
    def test_webp_size_read_from_header(self, photo: np.ndarray, quality: int) -> None:
        ok, buf = cv2.imencode(".webp", photo[:300, :200], [cv2.IMWRITE_WEBP_QUALITY, quality])
        assert ok
        assert decode(buf.tobytes()).shape == (300, 200, 3)
        with pytest.raises(FrameTooLargeError, match="200x300"):
            decode(buf.tobytes(), FrameLimits(max_pixels=200 * 299))

    def test_default_limit_is_4096_squared(self) -> None:
        assert FrameLimits().max_pixels == 4096 * 4096
        assert FrameLimits().max_side == 8192

    def test_not_bytes(self) -> None:
        with pytest.raises(FrameError, match="must be bytes"):
            decode("not bytes")  # type: ignore[arg-type]


class TestDecodeChannels:
    def test_grayscale_becomes_bgr(self, photo: np.ndarray) -> None:
        gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
        out = decode(_png(gray))
        assert out.shape == (*gray.shape, 3) and out.dtype == np.uint8
        assert np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 2], gray)

    def test_rgba_drops_alpha(self, photo: np.ndarray) -> None:
        bgra = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
        bgra[:, :, 3] = 128
        out = decode(_png(bgra))
        assert out.shape == photo.shape
        assert np.array_equal(out, photo)

    def test_jpeg_roundtrip(self, photo: np.ndarray) -> None:
        again = decode(encode_jpeg(photo, quality=95))
        assert again.shape == photo.shape
        assert float(np.abs(again.astype(int) - photo.astype(int)).mean()) < 3.0


class TestExifOrientation:
    @pytest.mark.parametrize(("orientation", "stored_as"), [(6, "ROTATE_90"), (8, "ROTATE_270")])
    def test_phone_jpeg_is_turned_upright_and_the_face_found(
        self, photo: np.ndarray, orientation: int, stored_as: str
    ) -> None:
        """A phone stores the sensor's pixels plus an EXIF tag; decode must apply it, or the
        face is sideways and not found."""
        from PIL import Image

        from vision.landmarks import FaceTracker

        sideways = Image.fromarray(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)).transpose(
            getattr(Image.Transpose, stored_as)
        )
        exif = Image.Exif()
        exif[0x0112] = orientation  # Orientation
        buf = io.BytesIO()
        sideways.save(buf, format="JPEG", exif=exif, quality=95)
        out = decode(buf.getvalue())
        assert out.shape == photo.shape
        assert float(np.abs(out.astype(int) - photo.astype(int)).mean()) < 4.0
        with FaceTracker() as tracker:
            assert len(tracker.process(out)) == 1


class TestToBgr:
    @pytest.mark.parametrize(
        "bad", ["float", "list", "two_channels", "four_dims"],
    )
    def test_rejects_wrong_arrays(self, photo: np.ndarray, bad: str) -> None:
        arr = {
            "float": photo.astype(np.float32),
            "list": photo[:4, :4].tolist(),
            "two_channels": photo[:, :, :2],
            "four_dims": photo[None],
        }[bad]
        with pytest.raises(FrameError):
            to_bgr(arr)  # type: ignore[arg-type]

    def test_min_side(self, photo: np.ndarray) -> None:
        with pytest.raises(FrameError, match=">= 16"):
            to_bgr(photo[:15])

    def test_pixel_limit(self, photo: np.ndarray) -> None:
        with pytest.raises(FrameTooLargeError):
            to_bgr(photo, FrameLimits(max_pixels=100 * 100))

    def test_single_channel_3d(self, photo: np.ndarray) -> None:
        gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)[:, :, None]
        assert to_bgr(gray).shape == photo.shape
