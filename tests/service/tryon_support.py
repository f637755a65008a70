"""Helpers for the try-on API tests: a real uvicorn server on loopback, keys, real frames."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import uvicorn

from service.app import create_app
from service.settings import Settings

ADMIN_KEY = "tryon-test-admin-key"
DEMO_KEY = "tryon-test-demo-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real app under uvicorn in a background thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", ws_max_size=8 * 1024 * 1024)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout_s: float = 60.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(30)

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0, **kw)

    def create_key(self, scopes: list[str], rate_limit: int | None = None,
                   name: str = "test") -> dict[str, Any]:
        with self.client(ADMIN_KEY) as c:
            r = c.post("/v1/keys", json={"name": name, "scopes": scopes,
                                         "rate_limit_per_minute": rate_limit})
            r.raise_for_status()
            return r.json()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/tryon.sqlite",
        "bootstrap_admin_key": ADMIN_KEY,
        "demo_api_key": DEMO_KEY,
        "worker_threads": 2,
        "retention_on_startup": False,
        "event_flush_interval_s": 0.2,
        # The tests' admin/kiosk keys run many requests; per-key limits are tested explicitly.
        "rate_limit_per_minute": 100_000,
        "demo_rate_limit_per_minute": 100_000,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def video_frames(path: Path, n: int, size: tuple[int, int] = (640, 480), step: int = 2,
                 start: int = 0) -> list[np.ndarray]:
    """n real frames (every `step`-th from `start`), resized to `size`."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    i = 0
    try:
        while len(frames) < n:
            ok, frame = cap.read()
            if not ok:
                break
            if i >= start and (i - start) % step == 0:
                frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
            i += 1
    finally:
        cap.release()
    return frames


def jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "server returned bytes that are not an image"
    return img


def wait_for(predicate: Any, timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
    """Poll until predicate() is truthy (events are written asynchronously, off the frames)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)
