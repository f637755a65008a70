"""Region replies (process_bytes(region=True)): only the box the overlay changed is encoded,
and drawn over the frame the client sent it is the whole composited frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.catalog import GlassesCatalog
from vision.landmarks import RunningMode
from vision.lipstick import load_shades
from vision.pipeline import PipelineOptions, ThreadLocalRenderers, TryOnPipeline


@pytest.fixture(scope="module")
def pipes() -> Iterator[tuple[TryOnPipeline, TryOnPipeline]]:
    """Two IMAGE-mode pipelines: whole-frame replies and region replies, same renderers."""
    renderers = ThreadLocalRenderers()
    made = tuple(
        TryOnPipeline(PipelineOptions(running_mode=RunningMode.IMAGE), GlassesCatalog.load(),
                      load_shades(), renderers=renderers)
        for _ in range(2)
    )
    yield made  # type: ignore[misc]
    for p in made:
        p.close()


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> bytes:
    img = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"), cv2.IMREAD_COLOR)
    assert img is not None
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize("select", ["glasses", "shade"])
def test_region_over_the_sent_frame_is_the_composite(pipes, photo: bytes, select: str) -> None:
    whole, region = pipes
    for p in pipes:
        if select == "glasses":
            p.select_glasses("CAT-51")
        else:
            p.select_shade(load_shades().ids[0])
    full = whole.process_bytes(photo)
    part = region.process_bytes(photo, region=True)
    assert full.region is None and part.region is not None and part.applied
    x, y, w, h = part.region
    sent = _decoded(photo)
    assert w > 0 and h > 0 and x + w <= sent.shape[1] and y + h <= sent.shape[0]
    patch = _decoded(part.jpeg or b"")
    assert patch.shape[:2] == (h, w)
    assert len(part.jpeg or b"") < len(full.jpeg or b"") / 3
    # Outside the box the composite is the frame as sent, to the pixel: the box holds every
    # change the overlay made.
    outside = np.ones(sent.shape[:2], bool)
    outside[y:y + h, x:x + w] = False
    decoded_input = full.image.copy()
    decoded_input[~outside] = 0
    reference = sent.copy()
    reference[~outside] = 0
    assert np.array_equal(decoded_input, reference)
    # Inside it the patch is the composite, as faithful as the whole-frame reply there (both
    # are JPEG q85 of the same pixels).
    box = full.image[y:y + h, x:x + w].astype(int)
    err_patch = np.abs(patch.astype(int) - box).mean()
    err_whole = np.abs(_decoded(full.jpeg or b"")[y:y + h, x:x + w].astype(int) - box).mean()
    assert err_patch <= 1.2 * err_whole + 0.5, (err_patch, err_whole)
    changed = np.abs(full.image[y:y + h, x:x + w].astype(int)
                     - sent[y:y + h, x:x + w].astype(int)).max(axis=2) > 30
    assert changed.mean() > 0.05  # and the box is where the overlay is, not a blank margin


def test_nothing_changed_sends_nothing(pipes, shared_data: Path) -> None:
    _, region = pipes
    region.select_glasses("REC-M")
    blank = np.full((240, 320, 3), 128, np.uint8)  # no face: nothing drawn
    res = region.process_bytes(cv2.imencode(".jpg", blank)[1].tobytes(), region=True)
    assert not res.applied and res.region == (0, 0, 0, 0) and res.jpeg == b""


def test_a_downscaled_frame_comes_back_whole(photo: bytes) -> None:
    """Pixels scaled down while decoding are not the client's: the reply is the whole frame."""
    pipe = TryOnPipeline(PipelineOptions(running_mode=RunningMode.IMAGE, max_side=200),
                         GlassesCatalog.load(), load_shades(), renderers=ThreadLocalRenderers())
    try:
        pipe.select_glasses("REC-M")
        res = pipe.process_bytes(photo, region=True)
    finally:
        pipe.close()
    assert res.region is None and max(_decoded(res.jpeg or b"").shape[:2]) == 200


def test_region_of_a_phone_jpeg_is_in_its_upright_frame(pipes, shared_data: Path) -> None:
    """A JPEG stored sideways with an EXIF orientation: the box is where the glasses are in
    the upright frame (what a browser shows for that JPEG), not in the stored pixels."""
    import io

    from PIL import Image

    from vision.frames import decode

    _, region = pipes
    region.select_glasses("REC-M")
    upright = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"), cv2.IMREAD_COLOR)
    sideways = Image.fromarray(cv2.cvtColor(upright, cv2.COLOR_BGR2RGB)).transpose(
        Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise to show
    buf = io.BytesIO()
    sideways.save(buf, format="JPEG", exif=exif, quality=95)
    res = region.process_bytes(buf.getvalue(), region=True)
    assert res.region is not None and res.applied
    x, y, w, h = res.region
    shown = decode(buf.getvalue())
    assert shown.shape == upright.shape and x + w <= shown.shape[1] and y + h <= shown.shape[0]
    eyes = res.faces[0].xy[[468, 473]]  # the irises, in the upright frame
    assert ((eyes[:, 0] > x) & (eyes[:, 0] < x + w) & (eyes[:, 1] > y)
            & (eyes[:, 1] < y + h)).all()
    assert w > h  # glasses lie across an upright face
