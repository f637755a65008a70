"""Lipstick latency: mask alone and mask + paint per finish, vs the landmark step, same frames.

Each shared video is scaled up (cover + centre crop) to 640x480 and 1280x720 and run through a
VIDEO-mode FaceTracker; on every frame with a face, the landmark step, the lip mask and the full
`LipstickPainter.apply` for each finish (in place, as the pipeline paints) are timed with
perf_counter, so the ratios to the landmark step come from the same frames in the same run.
Resizing is not timed.
Run: `python -m benchmarks.lipstick [--frames N] [--data DIR]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import Stats, markdown_table, write_results
from benchmarks.vision_core import DEFAULT_DATA, RESOLUTIONS, VIDEOS, frames
from vision.landmarks import FaceTracker, FaceTrackerOptions, RunningMode
from vision.lipstick import Finish, LipstickPainter, lip_mask_crop, load_shades

WARMUP = 5


def run_resolution(data: Path, size: tuple[int, int], n: int) -> dict[str, list[float]]:
    painter = LipstickPainter()
    shade = load_shades().get("classic-red")
    series: dict[str, list[float]] = {"landmarks": [], "mask": []}
    series.update({f"paint {f.value}": [] for f in Finish})
    for name in VIDEOS:
        with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO)) as tracker:
            for i, (frame, _t) in enumerate(frames(data / "videos" / name, n, size)):
                t0 = time.perf_counter()
                faces = tracker.process(frame)
                t1 = time.perf_counter()
                if not faces:
                    continue
                lip_mask_crop(frame, faces[0])
                t2 = time.perf_counter()
                paint = {}
                for f in Finish:
                    # The pipeline paints its own decoded frame in place; the copy standing
                    # for that frame is not timed (as benchmarks.render_glasses does).
                    target = frame.copy()
                    s = time.perf_counter()
                    painter.apply(target, faces[0], shade, 1.0, f, in_place=True)
                    paint[f] = time.perf_counter() - s
                if i < WARMUP:
                    continue
                series["landmarks"].append((t1 - t0) * 1e3)
                series["mask"].append((t2 - t1) * 1e3)
                for f, dt in paint.items():
                    series[f"paint {f.value}"].append(dt * 1e3)
    return series


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=60, help="frames per video and resolution")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    rows = []
    for size in RESOLUTIONS:
        series = run_resolution(args.data, size, args.frames)
        base = Stats.from_samples(series["landmarks"])
        for stage, samples in series.items():
            st = Stats.from_samples(samples)
            rows.append({
                "resolution": f"{size[0]}x{size[1]}",
                "stage": stage,
                "frames": st.n,
                "p50_ms": round(st.p50_ms, 3),
                "p95_ms": round(st.p95_ms, 3),
                "p50_vs_landmarks": round(st.p50_ms / base.p50_ms, 3),
                "p95_vs_landmarks": round(st.p95_ms / base.p95_ms, 3),
            })
    notes = (
        "`paint <finish>` is the whole `LipstickPainter.apply` as the pipeline calls it (mask + "
        "Lab blend on the lips' crop, in place on the decoded frame: no frame copy); `mask` is "
        "`lip_mask_crop` alone; ratios are to the VIDEO-mode landmark step "
        "(FaceTracker.process) on the same frames."
    )
    write_results("lipstick", rows, title="Lipstick latency per frame", notes=notes,
                  extra={"frames_per_video": args.frames, "videos": list(VIDEOS)})
    print(markdown_table(rows))
    paint = [float(str(r["p50_ms"])) for r in rows if str(r["stage"]).startswith("paint")]
    print("\nworst paint p50:", max(paint), "ms")


if __name__ == "__main__":
    main()
