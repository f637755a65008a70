"""The `onnx` landmark backend (vision/landmarks_onnx) on the CPU provider: committed models,
the BlazeFace decoding, the attention model's 478-point merge, backend selection and provider
fall-back, parity with the MediaPipe backend on the shared photos and videos (issue 13: mean
< 0.5 px over the 468 mesh points, < 2 px over the irises, AFLW NME within 0.2 percentage
points and head pose within 0.5 degrees), tracking, and micro-batching across streams.

The ONNX backend runs the same attention mesh model as the MediaPipe backend (converted with
its custom ops rewritten, tools/convert_face_models.py) and crops exactly as MediaPipe does, so
parity is measured in hundredths of a pixel; the thresholds leave room for float noise only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.vision.core_support import AFLW_IDS, VIDEOS, aflw_rotation, load_aflw, nme_8
from tests.vision.test_geometry import euler_from_rotation
from vision.errors import LandmarkError, OptionsError
from vision.geometry import Camera, estimate_pose
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.landmarks_onnx import MicroBatcher, attention, blazeface
from vision.landmarks_onnx.models import DETECTOR, MESH, MODELS_DIR, LandmarkModels
from vision.landmarks_onnx.tracker import OnnxFaceTracker

VIDEO_FRAMES = 150  # per video and backend: enough to track through head motion, bounded CPU


def _onnx(**kw: object) -> FaceTracker:
    return FaceTracker(FaceTrackerOptions(backend="onnx", **kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trackers() -> Iterator[tuple[FaceTracker, FaceTracker]]:
    with FaceTracker(FaceTrackerOptions()) as mp, _onnx() as ox:
        yield mp, ox


class TestModels:
    def test_checksums_and_notice(self) -> None:
        lines = (MODELS_DIR / "SHA256SUMS").read_text().split("\n")
        sums = {name: digest for digest, name in (line.split() for line in lines if line.strip())}
        assert set(sums) == {DETECTOR, MESH}
        for name, digest in sums.items():
            assert hashlib.sha256((MODELS_DIR / name).read_bytes()).hexdigest() == digest, name
        total = sum((MODELS_DIR / n).stat().st_size for n in sums)
        assert total < 6_000_000
        notice = (MODELS_DIR / "NOTICE").read_text()
        assert "Apache License, Version 2.0" in notice
        assert (MODELS_DIR.parent / "LICENSE-mediapipe.txt").exists()

    def test_dynamic_batch(self) -> None:
        models = LandmarkModels(("cpu",))
        rng = np.random.default_rng(1)
        for name, side in ((DETECTOR, 128), (MESH, 192)):
            x = rng.uniform(0, 1, (3, side, side, 3)).astype(np.float32)
            batched = models.run(name, x)
            for i in range(3):
                single = models.run(name, x[i:i + 1])
                for a, b in zip(single, batched, strict=True):
                    assert np.allclose(a[0], b[i], atol=1e-4), name


class TestBlazeFace:
    def test_anchors(self) -> None:
        a = blazeface.anchors()
        assert a.shape == (896, 2)
        assert np.allclose(a[0], [1 / 32, 1 / 32]) and np.allclose(a[511], [31 / 32, 31 / 32])
        assert np.allclose(a[512], [1 / 16, 1 / 16]) and np.allclose(a[-1], [15 / 16, 15 / 16])

    def test_weighted_nms(self) -> None:
        boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
        kps = np.zeros((3, 6, 2))
        kps[1] += 3.0
        out = blazeface.weighted_nms(boxes, kps, np.array([0.9, 0.6, 0.7]), 0.3)
        assert len(out) == 2
        box, kp, score = out[0]
        assert score == 0.9  # the best one's score, the weighted mean of the boxes
        assert np.allclose(box, [0.6 / 1.5, 0, 10 + 0.6 / 1.5, 10])
        assert np.allclose(kp, 3.0 * 0.6 / 1.5)
        assert out[1][2] == 0.7


class TestSelection:
    def test_backend_option_builds_the_onnx_tracker(self) -> None:
        with _onnx() as t:
            assert isinstance(t, OnnxFaceTracker) and isinstance(t, FaceTracker)
            assert t.provider == "CPUExecutionProvider"
        with FaceTracker() as mp:
            assert type(mp) is FaceTracker and mp.provider == "mediapipe-cpu"

    def test_unknown_backend(self) -> None:
        with pytest.raises(OptionsError, match="backend"):
            FaceTracker(FaceTrackerOptions(backend="nope"))

    def test_gpu_request_without_gpu_falls_back_with_one_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="vision.landmarks_onnx"):
            models = LandmarkModels(("cuda",))
        assert models.provider == "CPUExecutionProvider"
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) == 1 and "falling back to CPUExecutionProvider" in lines[0].message


def _photos(shared_data: Path) -> list[Path]:
    aflw = [shared_data / "faces" / "aflw2000" / f"image{i}.jpg" for i in AFLW_IDS]
    photos = shared_data / "faces" / "photos"
    return [*aflw, photos / "obama.jpg", photos / "astronaut.png", photos / "biden.jpg"]


MESH_PX = 0.5  # issue 13: mean distance to the MediaPipe backend over the 468 mesh points
IRIS_PX = 2.0  # ... over the 10 iris points


class TestAttentionMerge:
    def test_refine_places_sub_outputs_like_mediapipe(self) -> None:
        rng = np.random.default_rng(3)
        sizes = (1404, 160, 142, 142, 10, 10, 1)
        outs = [rng.uniform(0, 192, (2, k)).astype(np.float32) for k in sizes]
        pts = attention.refine(outs, 1)
        mesh = outs[attention.MESH][1].reshape(468, 3)
        assert pts.shape == (478, 3)
        assert np.allclose(pts[:, 2][:468], mesh[:, 2])  # z is always the mesh's
        assert np.allclose(pts[61, :2], outs[attention.LIPS_OUT][1][:2])  # first lip point
        assert np.allclose(pts[263, :2], outs[attention.RIGHT_EYE_OUT][1][:2])
        assert np.allclose(pts[193, :2], outs[attention.LEFT_EYE_OUT][1][-2:])
        untouched = np.setdiff1d(np.arange(468), np.concatenate(
            [attention.LIPS, attention.LEFT_EYE, attention.RIGHT_EYE]))
        assert np.allclose(pts[untouched], mesh[untouched])
        assert np.allclose(pts[468:473, :2], outs[attention.LEFT_IRIS_OUT][1].reshape(5, 2))
        assert np.allclose(pts[473:, :2], outs[attention.RIGHT_IRIS_OUT][1].reshape(5, 2))
        assert np.allclose(pts[470, 2], mesh[attention.LEFT_EYE[:16], 2].mean())
        assert np.allclose(pts[477, 2], mesh[attention.RIGHT_EYE[:16], 2].mean())
        assert len(set(attention.LIPS) | set(attention.LEFT_EYE) | set(attention.RIGHT_EYE)
                   ) == 80 + 71 + 71


class TestParityPhotos:
    def test_against_mediapipe_backend(self, shared_data: Path,
                                       trackers: tuple[FaceTracker, FaceTracker]) -> None:
        mp, ox = trackers
        rows = []
        for path in _photos(shared_data):
            img = cv2.imread(str(path))
            a, b = mp.process(img), ox.process(img)
            assert len(a) == len(b) == 1, path.name
            d = np.linalg.norm(a[0].xy - b[0].xy, axis=1)
            rows.append((path.name, d[:468].mean(), d[468:].mean(), d.max()))
        print("\n".join(f"{n}: mesh {m:.3f} px iris {i:.3f} px (max {x:.3f})"
                        for n, m, i, x in rows))
        # Measured: mesh 0.000-0.009 px, iris 0.000-0.016 px, max 0.031 px (AFLW 02420).
        for name, mesh, iris, _ in rows:
            assert mesh < MESH_PX and iris < IRIS_PX, (name, mesh, iris)
        assert max(r[3] for r in rows) < 0.5, rows  # no point astray either


def _aflw_scores(tracker: FaceTracker, shared_data: Path) -> tuple[float, np.ndarray]:
    nmes, errs = [], []
    for image_id in AFLW_IDS:
        case = load_aflw(shared_data / "faces" / "aflw2000", image_id)
        if abs(np.degrees(case.pitch_yaw_roll[1])) >= 60:
            continue
        face = tracker.process(case.image)[0]
        nmes.append(nme_8(face.xy.astype(np.float64), case.pts68)[0])
        pose = estimate_pose(face, Camera(case.image.shape[1], case.image.shape[0]))
        gt = np.array(euler_from_rotation(aflw_rotation(*case.pitch_yaw_roll)))
        errs.append(np.abs(np.array([pose.yaw_deg, pose.pitch_deg, pose.roll_deg]) - gt))
    return float(np.mean(nmes)), np.mean(errs, axis=0)


def test_aflw_nme_and_pose_match_mediapipe(
    shared_data: Path, trackers: tuple[FaceTracker, FaceTracker]
) -> None:
    mp, ox = trackers
    nme_mp, pose_mp = _aflw_scores(mp, shared_data)
    nme_ox, pose_ox = _aflw_scores(ox, shared_data)
    print(f"AFLW NME mediapipe {nme_mp:.3%} onnx {nme_ox:.3%}; pose MAE yaw/pitch/roll "
          f"mediapipe {np.round(pose_mp, 3)} onnx {np.round(pose_ox, 3)}")
    # issue 13: within 0.2 percentage points and 0.5 degrees, either way
    assert abs(nme_ox - nme_mp) < 0.002
    assert np.all(np.abs(pose_ox - pose_mp) < 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", VIDEOS)
def test_video_parity_and_tracking(shared_data: Path, name: str) -> None:
    cap = cv2.VideoCapture(str(shared_data / "videos" / f"{name}.mp4"))
    mp = FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO))
    ox = _onnx(running_mode=RunningMode.VIDEO)
    assert isinstance(ox, OnnxFaceTracker)
    detections = 0
    real_detect = ox._detect

    def counting(*a: object, **k: object) -> object:
        nonlocal detections
        detections += 1
        return real_detect(*a, **k)  # type: ignore[arg-type]

    ox._detect = counting  # type: ignore[method-assign,assignment]
    mesh, iris, found = [], [], 0
    for _ in range(VIDEO_FRAMES):
        ok, frame = cap.read()
        assert ok
        a, b = mp.process(frame), ox.process(frame)
        found += bool(b)
        if a and b:
            d = np.linalg.norm(a[0].xy - b[0].xy, axis=1)
            mesh.append(d[:468].mean())
            iris.append(d[468:].mean())
            assert 0.5 < b[0].score <= 1.0
    cap.release()
    mp.close()
    ox.close()
    print(f"{name}: mesh {np.mean(mesh):.3f} px (p95 {np.percentile(mesh, 95):.3f}) "
          f"iris {np.mean(iris):.3f} px, detector ran {detections}x in {VIDEO_FRAMES} frames")
    assert found == VIDEO_FRAMES
    assert detections <= 3  # tracked from the previous landmarks, detected when lost only
    # Measured over 150 frames: mesh 0.013-0.022 px (worst frame 0.05), iris 0.010-0.017 px.
    assert len(mesh) == VIDEO_FRAMES
    assert np.mean(mesh) < MESH_PX and max(mesh) < MESH_PX
    assert np.mean(iris) < IRIS_PX


class TestBatching:
    def test_batcher_keeps_rows_and_order(self) -> None:
        calls: list[int] = []

        def fn(x: np.ndarray) -> list[np.ndarray]:
            calls.append(len(x))
            return [x * 2, x.sum(axis=1, keepdims=True)]

        b = MicroBatcher(fn, window_ms=20, max_batch=64)
        for _ in range(8):
            b.register()
        results: dict[int, list[np.ndarray]] = {}

        def stream(i: int) -> None:
            outs = []
            for k in range(5):  # each stream's frames in order
                outs.append(b.submit(np.full((2, 3), 10 * i + k, np.float32))[0])
            results[i] = outs

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        b.close()
        for i, outs in results.items():
            assert [float(o[0, 0]) for o in outs] == [2.0 * (10 * i + k) for k in range(5)]
        assert sum(calls) == 8 * 5 * 2
        assert len(calls) < 40  # requests were gathered

    def test_bounded_queue(self) -> None:
        gate = threading.Event()

        def slow(x: np.ndarray) -> list[np.ndarray]:
            gate.wait(5)
            return [x]

        b = MicroBatcher(slow, window_ms=0, max_batch=1, max_queue=1)
        t = threading.Thread(target=b.submit, args=(np.zeros((1, 1)),))
        t.start()  # taken by the worker, which blocks
        t2 = threading.Thread(target=b.submit, args=(np.zeros((1, 1)),))
        t2.start()  # fills the queue
        threading.Event().wait(0.2)
        with pytest.raises(LandmarkError, match="full"):
            b.submit(np.zeros((1, 1)), timeout_s=0.2)
        gate.set()
        t.join()
        t2.join()
        b.close()

    def test_batched_trackers_match_unbatched(self, shared_data: Path) -> None:
        imgs = [cv2.imread(str(p)) for p in _photos(shared_data)[:4]]
        with _onnx() as single:
            ref = [single.process(img)[0] for img in imgs]
        trackers = [_onnx(batch_window_ms=5.0) for _ in imgs]
        got: dict[int, Face] = {}

        def run(i: int) -> None:
            got[i] = trackers[i].process(imgs[i])[0]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(imgs))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        models = trackers[0].models  # type: ignore[attr-defined]
        for tr in trackers:
            tr.close()
        for i, face in got.items():
            assert np.allclose(face.landmarks, ref[i].landmarks, atol=2e-2)
        assert models.batchers[MESH].rows >= len(imgs)
        assert models.batchers[MESH].batches < len(imgs) + 2
