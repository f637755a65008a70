"""Stream soak: open and close many WebSocket sessions and watch the server's memory.

A kiosk runs for weeks, opening a stream per shopper. This opens --sessions stream sessions
(each sends --frames real frames lock-step with glasses selected, then "end"), --parallel at a
time, against the real app in a uvicorn subprocess (SQLite in a temp dir), and samples the
server's RSS (/proc/PID/status VmRSS) every --sample-every sessions. Memory must come back to a
plateau: the slope of the low points (the minimum RSS per 100-session block, after warm-up)
per session is the leak figure.

    python -m benchmarks.stream_soak [--sessions 1000] [--parallel 4] [--frames 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.sync.client import connect

from benchmarks.common import wait_until_ready, write_results
from benchmarks.stream_roundtrip import VIDEO, free_port, load_frames

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "soak-admin-key"
WARMUP = 50  # sessions before the plateau is judged (caches, first GL context, allocator)
BLOCK = 100


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Server:
    """The app under uvicorn in a subprocess (one process: its pid is the server's)."""

    def __init__(self, tmp: Path, threads: int, max_streams: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TRYON_") and k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({
            "DATABASE_URL": f"sqlite:///{tmp}/soak.sqlite",
            "TRYON_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "TRYON_RATE_LIMIT_PER_MINUTE": "0",
            "TRYON_DEMO_RATE_LIMIT_PER_MINUTE": "0",
            "TRYON_WORKER_THREADS": str(threads),
            "TRYON_MAX_STREAMS": str(max_streams),
            "TRYON_RETENTION_ON_STARTUP": "false",
        })
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        wait_until_ready(self.url, self.proc, log)

    def kiosk_key(self) -> str:
        """A fresh kiosk key (one per client thread: keys have their own stream caps)."""
        r = httpx.post(f"http://{self.url}/v1/keys", headers={"X-API-Key": ADMIN_KEY},
                       json={"name": "soak", "scopes": ["kiosk"], "rate_limit_per_minute": 0},
                       timeout=30)
        r.raise_for_status()
        return str(r.json()["key"])

    @property
    def rss_kb(self) -> int:
        return rss_kb(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def one_session(server: Server, key: str, sku: str, frames: list[bytes]) -> int:
    """One stream session: ready, selected, frames lock-step, end. Returns frames received."""
    got = 0
    with connect(f"ws://{server.url}/v1/tryon/stream?sku={sku}&channel=kiosk",
                 additional_headers={"X-API-Key": key}, max_size=8 * 1024 * 1024,
                 open_timeout=60) as ws:
        while json.loads(ws.recv(timeout=60))["type"] != "selected":
            pass
        for data in frames:
            ws.send(data)
            while True:
                msg = ws.recv(timeout=60)
                if isinstance(msg, str) and json.loads(msg)["type"] == "frame":
                    assert isinstance(ws.recv(timeout=60), bytes)
                    got += 1
                    break
                if isinstance(msg, str) and json.loads(msg)["type"] == "error":
                    break
        ws.send(json.dumps({"type": "end"}))
        while json.loads(ws.recv(timeout=60))["type"] != "end":
            pass
    return got


def soak(server: Server, sessions: int, parallel: int, frames: list[bytes], per_session: int,
         sku: str, sample_every: int) -> tuple[list[tuple[int, int, float]], int, int]:
    """Run the sessions; returns (sessions done, RSS kB, seconds) samples, frames, errors."""
    samples = [(0, server.rss_kb, 0.0)]
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "frames": 0, "errors": 0}
    t0 = time.perf_counter()

    def worker() -> None:
        key = server.kiosk_key()
        while True:
            with lock:
                i = state["next"]
                if i >= sessions:
                    return
                state["next"] += 1
            start = (i * per_session) % (len(frames) - per_session)
            try:
                got = one_session(server, key, sku, frames[start:start + per_session])
            except Exception as exc:  # reported in the table; the soak goes on
                print(f"session {i}: {type(exc).__name__}: {exc}", file=sys.stderr)
                got, err = 0, 1
            else:
                err = 0
            with lock:
                state["done"] += 1
                state["frames"] += got
                state["errors"] += err
                if state["done"] % sample_every == 0:
                    samples.append((state["done"], server.rss_kb, time.perf_counter() - t0))

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if samples[-1][0] != sessions:
        samples.append((sessions, server.rss_kb, time.perf_counter() - t0))
    return samples, state["frames"], state["errors"]


def low_point_slope(samples: list[tuple[int, int, float]]) -> tuple[float, list[tuple[int, int]]]:
    """kB per session of the per-block minimum RSS after warm-up (least squares)."""
    lows: list[tuple[int, int]] = []
    for start in range(WARMUP, max(s for s, _, _ in samples), BLOCK):
        block = [(s, r) for s, r, _ in samples if start <= s < start + BLOCK or
                 (s == start + BLOCK == samples[-1][0])]
        if block:
            lows.append(min(block, key=lambda x: x[1]))
    if len(lows) < 2:
        return float("nan"), lows
    x = np.array([s for s, _ in lows], dtype=np.float64)
    y = np.array([r for _, r in lows], dtype=np.float64)
    return float(np.polyfit(x, y, 1)[0]), lows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--frames", type=int, default=3, help="frames per session")
    ap.add_argument("--sample-every", type=int, default=10)
    ap.add_argument("--sku", default="REC-M")
    ap.add_argument("--threads", type=int, default=2, help="server worker_threads")
    ap.add_argument("--size", type=int, nargs=2, default=[320, 240], help="frame size")
    ap.add_argument("--name", default="stream_soak", help="results file name")
    args = ap.parse_args()

    frames = load_frames(60, tuple(args.size))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"  # MediaPipe's start-up chatter, per session
        server = Server(Path(tmp), args.threads, max(8, args.parallel), log)
        try:
            samples, n_frames, errors = soak(server, args.sessions, args.parallel, frames,
                                             args.frames, args.sku, args.sample_every)
        finally:
            server.stop()
    slope, lows = low_point_slope(samples)
    marks = {0, WARMUP, args.sessions, *range(BLOCK, args.sessions + 1, BLOCK)}
    rows: list[dict[str, Any]] = []
    for s, r, t in samples:
        if s in marks:
            low = min((lr for ls, lr in lows if ls <= s), default=None)
            rows.append({
                "sessions": s,
                "label": "start" if s == 0 else "after warm-up" if s == WARMUP else
                "end" if s == args.sessions else "",
                "rss_mb": round(r / 1024, 1),
                "low_point_mb_so_far": round(low / 1024, 1) if low is not None else None,
                "elapsed_s": round(t, 1),
            })
    notes = (
        f"{args.sessions} WebSocket try-on sessions, {args.parallel} at a time, each "
        f"{args.frames} real {args.size[0]}x{args.size[1]} JPEG frames from {VIDEO.name} "
        f"lock-step with glasses {args.sku} selected, then \"end\"; server: one uvicorn "
        f"process, worker_threads={args.threads}, SQLite. RSS sampled every "
        f"{args.sample_every} sessions. Frames answered: {n_frames}; failed sessions: "
        f"{errors}. Low points (min RSS per {BLOCK}-session block after {WARMUP} warm-up "
        f"sessions) slope: {slope:.2f} kB/session. Command: python -m benchmarks.stream_soak "
        f"--sessions {args.sessions} --parallel {args.parallel} --frames {args.frames}."
    )
    json_path, md_path = write_results(
        args.name, rows, title="Stream soak: server RSS over many sessions", notes=notes,
        extra={"samples": samples, "low_points": lows, "slope_kb_per_session": slope,
               "frames": n_frames, "failed_sessions": errors},
    )
    print(md_path.read_text())
    print(f"saved {json_path} and {md_path}")


if __name__ == "__main__":
    main()
