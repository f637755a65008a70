"""Shoppers already wearing glasses: faces/glasses_worn (2 people, each with and without their
own glasses) must be told apart; faces without glasses elsewhere in the shared data must not be
flagged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from vision.landmarks import FaceTracker
from vision.worn_glasses import THRESHOLD, detect_worn_glasses

# Faces without glasses (checked by eye): the shared unannotated photos, AFLW2000, MT lips.
NO_GLASSES = ("faces/photos/astronaut.png", "faces/photos/obama.jpg", "faces/photos/biden.jpg",
              "faces/photos/mindar_face1.jpeg", "faces/photos/two_people.jpg")


@pytest.fixture(scope="module")
def tracker() -> Iterator[FaceTracker]:
    with FaceTracker() as t:
        yield t


@pytest.mark.parametrize("person", ["id0", "id2"])
def test_same_person_with_and_without(shared_data: Path, tracker: FaceTracker,
                                      person: str) -> None:
    root = shared_data / "faces" / "glasses_worn"
    scores = {}
    for kind in ("glasses", "no_glasses"):
        image = cv2.imread(str(root / f"{person}_{kind}_1.jpg"))
        (face,) = tracker.process(image)
        r = detect_worn_glasses(image, face)
        scores[kind] = r.score
        assert r.wearing == (kind == "glasses"), (person, kind, r)
    print(f"\n{person}: glasses {scores['glasses']:.2f}, none {scores['no_glasses']:.2f}")
    # A clear margin, not a coin toss at the threshold (measured 6.7 / 11.6 vs 1.8 / 0.8).
    assert scores["glasses"] >= 1.5 * THRESHOLD and scores["no_glasses"] <= 0.5 * THRESHOLD


def test_faces_without_glasses_not_flagged(shared_data: Path, tracker: FaceTracker) -> None:
    paths = [shared_data / p for p in NO_GLASSES]
    paths += sorted((shared_data / "faces" / "aflw2000").glob("*.jpg"))
    paths += sorted((shared_data / "faces" / "lips" / "images").glob("*.png"))
    paths += sorted((shared_data / "faces" / "photos" / "franck_frames").glob("*.jpg"))[:5]
    flagged, n = [], 0
    for p in paths:
        image = cv2.imread(str(p))
        assert image is not None, p
        for face in tracker.process(image):
            n += 1
            r = detect_worn_glasses(image, face)
            if r.wearing:
                flagged.append((p.name, round(r.score, 2)))
    assert n >= 28
    assert not flagged, flagged
