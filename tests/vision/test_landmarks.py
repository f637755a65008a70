"""FaceTracker on real photos and videos: accuracy (AFLW2000 NME), tracking, scores, bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.vision.core_support import AFLW_IDS, VIDEOS, load_aflw, nme_8, video_track
from vision.errors import FrameError, LandmarkError, OptionsError, RunningModeError
from vision.landmarks import NUM_LANDMARKS, Face, FaceTracker, FaceTrackerOptions, RunningMode

NME_LIMIT = 0.08  # issue 2: raw MediaPipe scores 7.2% on the photos with |yaw| < 60 degrees
MIN_TRACKED = 0.97


@pytest.fixture(scope="module")
def image_tracker() -> Iterator[FaceTracker]:
    with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.IMAGE)) as tracker:
        yield tracker


@pytest.fixture(scope="module")
def aflw_results(shared_data: Path, image_tracker: FaceTracker) -> dict[str, dict]:
    """Per photo: ground-truth yaw, whether a face was found, and the 8-point NME."""
    out = {}
    for image_id in AFLW_IDS:
        case = load_aflw(shared_data / "faces" / "aflw2000", image_id)
        faces = image_tracker.process(case.image)
        yaw = float(np.degrees(case.pitch_yaw_roll[1]))
        nme = nme_8(faces[0].xy.astype(np.float64), case.pts68)[0] if faces else float("nan")
        out[image_id] = {"yaw_deg": yaw, "found": bool(faces), "nme": nme}
    return out


def _table(results: dict[str, dict]) -> str:
    rows = [f"{k}: yaw {v['yaw_deg']:+6.1f}  found {v['found']}  NME {v['nme'] * 100:5.2f}%"
            for k, v in results.items()]
    return "\n".join(rows)


class TestAflwAccuracy:
    @pytest.mark.parametrize("image_id", AFLW_IDS)
    def test_face_found_and_nme_per_photo(
        self, aflw_results: dict[str, dict], image_id: str, record_property: Callable
    ) -> None:
        r = aflw_results[image_id]
        record_property("gt_yaw_deg", round(r["yaw_deg"], 1))
        record_property("nme_percent", round(r["nme"] * 100, 2))
        print(f"AFLW {image_id}: yaw {r['yaw_deg']:+.1f} NME {r['nme'] * 100:.2f}%")
        if abs(r["yaw_deg"]) < 60:
            assert r["found"], f"no face on {image_id} (yaw {r['yaw_deg']:.1f})"
            # One photo may be much harder than the mean (00251 is turned 55 degrees: 15.5%);
            # a gross miss, a face found somewhere else, is a bug.
            assert r["nme"] < 0.25, _table(aflw_results)

    def test_mean_nme_on_photos_within_60_degrees(
        self, aflw_results: dict[str, dict], record_property: Callable
    ) -> None:
        within = [v["nme"] for v in aflw_results.values() if abs(v["yaw_deg"]) < 60]
        mean = float(np.mean(within))
        record_property("mean_nme_percent", round(mean * 100, 2))
        record_property("table", _table(aflw_results))
        print(f"AFLW mean 8-point NME over {len(within)} photos: {mean * 100:.2f}%\n"
              + _table(aflw_results))
        assert len(within) == 6
        assert mean <= NME_LIMIT, f"mean NME {mean:.3%}\n" + _table(aflw_results)


class TestFaces:
    def test_face_fields(self, shared_data: Path, image_tracker: FaceTracker) -> None:
        img = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))
        (face,) = image_tracker.process(img)
        assert face.landmarks.shape == (NUM_LANDMARKS, 3)
        assert face.landmarks.dtype == np.float32
        assert face.image_size == (img.shape[1], img.shape[0])
        x0, y0, x1, y1 = face.bbox
        assert 0 <= x0 < x1 <= img.shape[1] and 0 <= y0 < y1 <= img.shape[0]
        assert np.allclose(face.bbox, [*face.xy.min(axis=0), *face.xy.max(axis=0)])
        # The face detector's score, not a placeholder.
        assert 0.5 < face.score < 1.0
        # The wearer's right iris (468) is on the image left in an unmirrored photo.
        assert face.xy[468, 0] < face.xy[473, 0]

    @pytest.mark.parametrize("region", ["flag", "suit", "curtain"])
    def test_no_face_gives_empty_list(
        self, shared_data: Path, image_tracker: FaceTracker, region: str
    ) -> None:
        img = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))
        crop = {"flag": img[0:500, 0:250], "suit": img[600:], "curtain": img[0:400, 650:]}
        assert image_tracker.process(np.ascontiguousarray(crop[region])) == []

    def test_two_people(self, shared_data: Path) -> None:
        img = cv2.imread(str(shared_data / "faces" / "photos" / "two_people.jpg"))
        with FaceTracker(FaceTrackerOptions(max_faces=2)) as tracker:
            faces = tracker.process(img)
        assert len(faces) == 2
        a, b = (f.bbox for f in faces)
        assert a[2] < b[0] or b[2] < a[0], "the two faces must not overlap"
        with FaceTracker(FaceTrackerOptions(max_faces=1)) as tracker:
            assert len(tracker.process(img)) == 1

    def test_gray_and_bgra_inputs(self, shared_data: Path, image_tracker: FaceTracker) -> None:
        img = cv2.imread(str(shared_data / "faces" / "photos" / "astronaut.png"))
        ref = image_tracker.process(img)[0]
        bgra = image_tracker.process(cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))[0]
        assert np.allclose(bgra.landmarks, ref.landmarks, atol=1e-3)
        gray = image_tracker.process(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        assert len(gray) == 1
        iod = np.linalg.norm(ref.xy[33] - ref.xy[263])
        assert np.linalg.norm(gray[0].xy - ref.xy, axis=1).mean() < 0.1 * iod

    def test_from_landmarks_checks_shape(self) -> None:
        with pytest.raises(LandmarkError, match="478"):
            Face.from_landmarks(np.zeros((468, 3)), 1.0, (10, 10))


class TestBadUse:
    def test_tiny_frame_is_a_frame_error(self, image_tracker: FaceTracker) -> None:
        with pytest.raises(FrameError):
            image_tracker.process(np.zeros((1, 1, 3), np.uint8))

    def test_closed_tracker(self, shared_data: Path) -> None:
        tracker = FaceTracker()
        tracker.close()
        with pytest.raises(RunningModeError):
            tracker.process(np.zeros((64, 64, 3), np.uint8))

    def test_iris_refinement_required(self) -> None:
        with pytest.raises(OptionsError, match="refine_landmarks"):
            FaceTracker(FaceTrackerOptions(refine_landmarks=False))


class TestVideoTracking:
    @pytest.mark.parametrize("name", VIDEOS)
    def test_tracked_in_97_percent_of_frames(
        self, shared_data: Path, name: str, record_property: Callable
    ) -> None:
        track = video_track(str(shared_data / "videos" / f"{name}.mp4"))
        rate = float(track.found.mean())
        record_property("frames", int(track.found.size))
        record_property("tracked_percent", round(rate * 100, 2))
        print(f"{name}: tracked {rate:.2%} of {track.found.size} frames")
        assert track.found.size > 300
        assert rate >= MIN_TRACKED, f"{name}: tracked {rate:.2%}"
        # Presence scores come from the detector and are carried while tracking.
        s = track.scores[track.found]
        assert np.all((s > 0.5) & (s <= 1.0))
