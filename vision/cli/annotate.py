"""`python -m vision annotate INPUT --out OUTPUT`: draw mesh, irises, pose axes and measurements.

Works on an image or a video; prints one JSON line per frame (faces, pose, measurements,
timings) so a person can look at the output and check the numbers against it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from vision.errors import FrameError, PoseError, VisionError
from vision.frames import FrameLimits, decode, to_bgr
from vision.geometry import Camera, CanonicalFace, HeadPose, estimate_pose, transform_points
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.measure import FaceMeasurements, measure_face
from vision.meter import FaceMeter
from vision.smoothing import LandmarkSmoother, SmoothingOptions

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".y4m"}
AXIS_CM = 5.0
MESH_COLOR = (200, 200, 200)
IRIS_COLOR = (0, 255, 255)
AXIS_COLORS = ((0, 0, 255), (0, 200, 0), (255, 80, 0))  # x red (wearer's left), y green, z blue


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "annotate", help="draw landmarks, pose and measurements on an image or a video",
        description=__doc__,
    )
    p.add_argument("input", type=Path, help="image (jpg/png/webp) or video file")
    p.add_argument("--out", type=Path, required=True, help="annotated image or video (.mp4)")
    p.add_argument("--fov", type=float, default=63.0, help="vertical field of view, degrees")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N video frames")
    p.add_argument("--max-faces", type=int, default=1)
    p.add_argument("--no-smooth", action="store_true", help="video: skip landmark smoothing")
    p.add_argument("--no-mesh", action="store_true", help="draw only irises, axes and text")
    return p


def _mesh_edges() -> np.ndarray:
    """(E, 2) unique vertex pairs of the canonical triangles."""
    tri = CanonicalFace.load().triangles
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


def draw(frame: np.ndarray, face: Face, pose: HeadPose | None, camera: Camera,
         m: FaceMeasurements | None, edges: np.ndarray | None) -> None:
    """Annotate a BGR frame in place."""
    xy = face.xy
    scale = max(1, round(min(frame.shape[:2]) / 480))
    if edges is not None:
        segs = np.round(xy[edges]).astype(np.int32)
        cv2.polylines(frame, list(segs), False, MESH_COLOR, 1, cv2.LINE_AA)
    for centre, ring in ((468, slice(469, 473)), (473, slice(474, 478))):
        radius = float(np.linalg.norm(xy[ring] - xy[centre], axis=1).mean())
        cv2.circle(frame, tuple(np.round(xy[centre]).astype(int)), max(1, round(radius)),
                   IRIS_COLOR, 1, cv2.LINE_AA)
    x0, y0 = int(face.bbox[0]), int(face.bbox[1])
    lines = [f"score {face.score:.2f}"]
    if pose is not None:
        origin = CanonicalFace.load().vertices[168]  # nose bridge, between the eyes
        pts = np.vstack([origin, origin + np.eye(3) * AXIS_CM])
        px = np.round(camera.project(transform_points(pose.matrix, pts))).astype(int)
        for k in range(3):
            cv2.arrowedLine(frame, tuple(px[0]), tuple(px[k + 1]), AXIS_COLORS[k], 2 * scale,
                            cv2.LINE_AA, tipLength=0.15)
        lines.append(f"yaw {pose.yaw_deg:+.0f} pitch {pose.pitch_deg:+.0f} "
                     f"roll {pose.roll_deg:+.0f}  z {-pose.translation_cm[2]:.0f}cm")
    if m is not None:
        lo, hi = m.recommended_frame_width_mm
        lines.append(f"PD {m.pd_mm:.1f}+-{m.pd_uncertainty_mm:.1f} mm  "
                     f"width {m.face_width_mm:.0f}+-{m.face_width_uncertainty_mm:.0f} mm")
        lines.append(f"frame {lo:.0f}-{hi:.0f} mm  size {m.size_band}")
        if m.quality_flags:
            lines.append(" ".join(m.quality_flags))
    font_scale, line_h = 0.45 * scale, 16 * scale
    widest = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font_scale, scale)[0][0]
                 for t in lines)
    x = max(2, min(x0, frame.shape[1] - widest - 2))  # keep the text inside the frame
    top = y0 - 6 - (len(lines) - 1) * line_h
    if top < line_h:  # no room above the face: write below it
        top = int(face.bbox[3]) + line_h
    for i, text in enumerate(lines):
        org = (x, top + i * line_h)
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                    3 * scale, cv2.LINE_AA)
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255),
                    scale, cv2.LINE_AA)


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _frames(path: Path, max_frames: int | None) -> Iterator[tuple[np.ndarray, float]]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FrameError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    try:
        i = 0
        while max_frames is None or i < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame, i / fps
            i += 1
    finally:
        cap.release()


class Annotator:
    """The vision core for one input: tracker, smoothing, pose and measurements per frame."""

    def __init__(self, video: bool, fov: float, max_faces: int = 1, smooth: bool = True,
                 mesh: bool = True) -> None:
        mode = RunningMode.VIDEO if video else RunningMode.IMAGE
        self.tracker = FaceTracker(FaceTrackerOptions(running_mode=mode, max_faces=max_faces))
        self.smoother = LandmarkSmoother(SmoothingOptions()) if video and smooth else None
        self.meters = [FaceMeter() for _ in range(max_faces)] if video else None
        self.fov = fov
        self.edges = _mesh_edges() if mesh else None

    def process(self, frame: np.ndarray, index: int, t_s: float) -> dict[str, Any]:
        """Annotate `frame` in place; the JSON-able record of this frame."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        faces = self.tracker.process(frame)
        t1 = time.perf_counter()
        if self.smoother is not None:
            faces = self.smoother.smooth(faces, t_s)
        t2 = time.perf_counter()
        camera = Camera(frame.shape[1], frame.shape[0], self.fov)
        records = []
        poses: list[HeadPose | None] = []
        measures: list[FaceMeasurements | None] = []
        t_pose = t_measure = 0.0
        for k, face in enumerate(faces):
            ta = time.perf_counter()
            try:
                pose: HeadPose | None = estimate_pose(face, camera)
            except PoseError:
                pose = None
            tb = time.perf_counter()
            m = None
            if pose is not None:
                m = (self.meters[k].update(face, pose, camera) if self.meters is not None
                     else measure_face(face, pose, camera))
            t_pose += tb - ta
            t_measure += time.perf_counter() - tb
            poses.append(pose)
            measures.append(m)
            records.append({
                "bbox": [round(float(v), 1) for v in face.bbox],
                "score": round(face.score, 3),
                "pose": pose.to_dict() if pose is not None else None,
                "measurements": m.to_dict() if m is not None else None,
            })
        t3 = time.perf_counter()
        for face, pose, m in zip(faces, poses, measures, strict=True):
            draw(frame, face, pose, camera, m, self.edges)
        t4 = time.perf_counter()
        timings = {"landmarks": (t1 - t0) * 1e3, "smooth": (t2 - t1) * 1e3,
                   "pose": t_pose * 1e3, "measure": t_measure * 1e3, "draw": (t4 - t3) * 1e3}
        return {"frame": index, "t_s": round(t_s, 4),
                "image_size": [frame.shape[1], frame.shape[0]], "faces": records,
                "timings_ms": {k: round(v, 3) for k, v in timings.items()}}

    def close(self) -> None:
        self.tracker.close()


def annotate(input_path: Path, out_path: Path, fov: float = 63.0,
             max_frames: int | None = None, max_faces: int = 1, smooth: bool = True,
             mesh: bool = True, stream: TextIO | None = None) -> int:
    """Annotate an image or video to `out_path`; returns the number of frames written."""
    stream = stream if stream is not None else sys.stdout
    video = _is_video(input_path)
    ann = Annotator(video, fov, max_faces, smooth, mesh)
    try:
        if not video:
            frame = decode(input_path.read_bytes(), FrameLimits())
            print(json.dumps(ann.process(frame, 0, 0.0)), file=stream, flush=True)
            if not cv2.imwrite(str(out_path), frame):
                raise OSError(f"cannot write image {out_path}")
            return 1
        writer = None
        n = 0
        try:
            for frame, t_s in _frames(input_path, max_frames):
                frame = to_bgr(frame)
                print(json.dumps(ann.process(frame, n, t_s)), file=stream, flush=True)
                if writer is None:
                    writer = _open_writer(out_path, frame.shape[1], frame.shape[0], input_path)
                writer.write(frame)
                n += 1
        finally:
            if writer is not None:
                writer.release()
        return n
    finally:
        ann.close()


def _open_writer(path: Path, width: int, height: int, source: Path) -> cv2.VideoWriter:
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path} (use .mp4)")
    return writer


def run(args: argparse.Namespace) -> int:
    try:
        n = annotate(args.input, args.out, fov=args.fov, max_frames=args.max_frames,
                     max_faces=args.max_faces, smooth=not args.no_smooth, mesh=not args.no_mesh)
    except (VisionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({n} frame{'s' if n != 1 else ''})", file=sys.stderr)
    return 0
