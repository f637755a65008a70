"""Iris refinement every Nth frame: what it saves, and what it does to PD and placement.

Each shared video (scaled up to 640x480) runs through two MediaPipe face-mesh graphs in VIDEO
mode, one with iris refinement (478 points, what FaceTracker runs) and one without (468),
alternating which goes first. Latency: p50/p95 of each. Every-Nth simulation: on frames
i % N == 0 the refined points are used; otherwise the 468 unrefined points, with the irises of
the last refined frame moved by how far each eye's contour centre moved since. PD comes from
FaceMeter (the stream's pooled measurement); placement is the pixel distance of landmark 168
(where the bridge sits) between the two graphs.
Run: `python -m benchmarks.iris_refinement [--frames N]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.common import Stats, markdown_table, write_results
from benchmarks.vision_core import DEFAULT_DATA, VIDEOS, frames
from vision.errors import PoseError
from vision.geometry import Camera, estimate_pose
from vision.landmarks import Face
from vision.meter import FaceMeter

SIZE = (640, 480)
EVERY = (1, 2, 4, 8)
# MediaPipe eye contours (image-left eye, image-right eye) and their iris point ranges.
EYES = ((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
        (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466))
IRIS = (slice(468, 473), slice(473, 478))


def _mesh(refine: bool) -> Any:
    from mediapipe.python.solutions import face_mesh

    return face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=refine)


def _points(res: Any, w: int, h: int) -> np.ndarray | None:
    if not res.multi_face_landmarks:
        return None
    lm = res.multi_face_landmarks[0].landmark
    return np.array([(p.x * w, p.y * h, p.z * w) for p in lm], dtype=np.float32)


def _iris_owner(pts: np.ndarray) -> list[int]:
    """Which eye contour each iris block sits in (MediaPipe's order, checked not assumed)."""
    centres = [pts[list(e), :2].mean(axis=0) for e in EYES]
    return [int(np.argmin([np.linalg.norm(pts[s, :2].mean(axis=0) - c) for c in centres]))
            for s in IRIS]


def run_video(path: Path, n: int) -> dict[str, Any]:
    refined, plain = _mesh(True), _mesh(False)
    t_ref: list[float] = []
    t_plain: list[float] = []
    pairs = []
    for i, (frame, _) in enumerate(frames(path, n, SIZE)):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        order = [(refined, t_ref), (plain, t_plain)]
        out = {}
        for mesh, times in order if i % 2 else order[::-1]:
            t0 = time.perf_counter()
            out[id(mesh)] = _points(mesh.process(rgb), *SIZE)
            times.append((time.perf_counter() - t0) * 1e3)
        pairs.append((out[id(refined)], out[id(plain)]))
    refined.close()
    plain.close()
    return {"t_ref": t_ref, "t_plain": t_plain, "pairs": pairs}


def simulate(pairs: list[tuple[np.ndarray | None, np.ndarray | None]], every: int
             ) -> dict[str, float]:
    cam, meter = Camera(*SIZE), FaceMeter()
    last: np.ndarray | None = None
    pds, shift168 = [], []
    for i, (ref, plain) in enumerate(pairs):
        if ref is None or plain is None:
            last = None
            continue
        if i % every == 0 or last is None:
            pts, last = ref, ref
        else:
            pts = np.vstack([plain, last[468:]])
            for s, eye in zip(IRIS, (EYES[k] for k in _iris_owner(last)), strict=True):
                move = plain[list(eye), :2].mean(axis=0) - last[list(eye), :2].mean(axis=0)
                pts[s, :2] = last[s, :2] + move
            shift168.append(float(np.linalg.norm(plain[168, :2] - ref[168, :2])))
        face = Face.from_landmarks(pts, 1.0, SIZE)
        try:
            m = meter.update(face, estimate_pose(face, cam), cam)
        except PoseError:
            continue
        pds.append(m.pd_mm)
    tail = np.array(pds[len(pds) // 4 :])  # after the pooled estimate settles
    return {"pd_final_mm": pds[-1] if pds else float("nan"),
            "pd_cv_%": float(100 * tail.std() / tail.mean()) if tail.size else float("nan"),
            "168 shift p95 px": float(np.percentile(shift168, 95)) if shift168 else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    rows = []
    lat_ref, lat_plain = [], []
    for name in VIDEOS:
        r = run_video(args.data / "videos" / name, args.frames)
        lat_ref += r["t_ref"][5:]
        lat_plain += r["t_plain"][5:]
        base = simulate(r["pairs"], 1)
        for every in EVERY:
            s = simulate(r["pairs"], every)
            rows.append({"video": name, "iris every N": every, **s,
                         "PD vs every frame (mm)": s["pd_final_mm"] - base["pd_final_mm"]})
    sr, sp = Stats.from_samples(lat_ref), Stats.from_samples(lat_plain)
    saved = 1 - sp.p50_ms / sr.p50_ms
    notes = (f"{SIZE[0]}x{SIZE[1]}, {args.frames} frames per video. Face mesh with irises: p50 "
             f"{sr.p50_ms:.2f} ms, p95 {sr.p95_ms:.2f}; without: p50 {sp.p50_ms:.2f}, p95 "
             f"{sp.p95_ms:.2f} (same frames, alternating): skipping the irises saves "
             f"{100 * saved:.0f} % of the landmark step on those frames. '168 shift' = how far "
             "the bridge landmark moves between the two graphs on skipped frames.")
    write_results("iris_refinement", rows, title="Iris refinement every Nth frame", notes=notes,
                  extra={"refined_ms": sr.to_dict(), "plain_ms": sp.to_dict()})
    print(markdown_table(rows))
    print(notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
