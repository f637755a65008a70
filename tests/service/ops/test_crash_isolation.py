"""Crash isolation: `python -m service --workers 2` loses one worker, not the service.

The real entry point runs in its own process group on a free port with a temporary SQLite
database. Two streams are opened until they are served by different workers (the "ready"
message names its pid); one worker is SIGKILLed (what a native abort in OpenCV or MediaPipe
amounts to). The other stream keeps getting frames, new requests are answered, and uvicorn's
supervisor starts a replacement worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.service.harness import ADMIN_KEY, DEMO_KEY, ROOT, free_port, wait_for

pytestmark = pytest.mark.slow


class Supervised:
    """`python -m service --workers N` in a new session (process group)."""

    def __init__(self, tmp: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path = tmp / "server.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TRYON_") and k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({
            "DATABASE_URL": f"sqlite:///{tmp}/tryon.sqlite",
            "TRYON_DEMO_API_KEY": DEMO_KEY,
            "TRYON_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "TRYON_DEMO_RATE_LIMIT_PER_MINUTE": "0",
            "TRYON_RATE_LIMIT_PER_MINUTE": "0",
            "TRYON_WORKER_THREADS": "1",
            "TRYON_RETENTION_ON_STARTUP": "false",
            # One key opens streams until two workers serve one each (the cap is per worker).
            "TRYON_MAX_STREAMS_PER_PRINCIPAL": "32",
        })
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "--workers", str(workers),
                 "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kiosk_key(self) -> str:
        """A kiosk-scoped key made over HTTP with the bootstrap admin key."""
        r = httpx.post(f"{self.url}/v1/keys", headers={"X-API-Key": ADMIN_KEY}, timeout=30,
                       json={"name": "crash test", "scopes": ["kiosk"],
                             "rate_limit_per_minute": 0})
        r.raise_for_status()
        self.key = str(r.json()["key"])
        return self.key

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def readyz(self) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{self.url}/readyz", timeout=5)
        except httpx.HTTPError:
            return None
        return dict(r.json()) if r.status_code == 200 else None

    def pids_answering(self, n: int = 16) -> set[int]:
        """Worker pids seen over n concurrent /readyz requests (fresh connections)."""
        with ThreadPoolExecutor(8) as ex:
            bodies = list(ex.map(lambda _: self.readyz(), range(n)))
        return {b["pid"] for b in bodies if b is not None}

    def children(self) -> set[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return {int(p) for p in path.read_text().split()}
        except OSError:
            return set()

    def stop(self) -> None:
        with _suppress_lookup():
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with _suppress_lookup():
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        with _suppress_lookup():  # anything left in the group (a worker mid-start)
            os.killpg(self.proc.pid, signal.SIGKILL)


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: object, *_: object) -> bool:
        return typ is ProcessLookupError


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Supervised]:
    s = Supervised(tmp_path)
    try:
        if not wait_for(lambda: s.proc.poll() is None and s.readyz(), timeout_s=120,
                        interval_s=0.5):
            pytest.fail(f"service not ready:\n{s.log()}")
        s.kiosk_key()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def frame(shared_data: Path) -> bytes:
    return (shared_data / "faces" / "photos" / "obama.jpg").read_bytes()


def _open(server: Supervised) -> tuple[ClientConnection, int]:
    ws = connect(f"{server.ws_url}/v1/tryon/stream?channel=kiosk", max_size=8 * 1024 * 1024,
                 open_timeout=30, additional_headers={"X-API-Key": server.key})
    ready = json.loads(ws.recv(timeout=30))
    assert ready["type"] == "ready", ready
    return ws, int(ready["pid"])


def _frame(ws: ClientConnection, data: bytes) -> dict[str, Any]:
    ws.send(data)
    while True:
        msg = ws.recv(timeout=60)
        if isinstance(msg, str):
            body = json.loads(msg)
            if body["type"] == "frame":
                assert isinstance(ws.recv(timeout=60), bytes)
                return dict(body)
            assert body["type"] != "error", body


def _streams_on_two_workers(server: Supervised) -> dict[int, ClientConnection]:
    """One open stream per worker (connections land where the kernel puts them)."""
    by_pid: dict[int, ClientConnection] = {}
    extra: list[ClientConnection] = []
    deadline = time.monotonic() + 60
    while len(by_pid) < 2 and time.monotonic() < deadline:
        ws, pid = _open(server)
        if pid in by_pid:
            extra.append(ws)  # keep it open: the next connection may go to the other worker
            if len(extra) >= 4:
                for e in extra:
                    e.close()
                extra.clear()
        else:
            by_pid[pid] = ws
    for e in extra:
        e.close()
    assert len(by_pid) == 2, f"every stream landed on one worker: {list(by_pid)}"
    return by_pid


def test_killing_a_worker_costs_only_its_streams(server: Supervised, frame: bytes) -> None:
    streams = _streams_on_two_workers(server)
    (victim, victim_ws), (survivor, survivor_ws) = sorted(streams.items())
    assert {victim, survivor} <= server.children(), (streams, server.children())
    for ws in streams.values():
        assert _frame(ws, frame)["faces"] == 1

    os.kill(victim, signal.SIGKILL)

    # The victim's stream is gone with it ...
    with pytest.raises((ConnectionClosed, OSError, TimeoutError)):
        for _ in range(3):
            _frame(victim_ws, frame)
    # ... the other stream carries on, frame after frame.
    for _ in range(5):
        assert _frame(survivor_ws, frame)["faces"] == 1
    # New requests are answered (by the survivor, until the replacement is up).
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(5):
            r = c.get("/v1/products", headers={"X-API-Key": server.key})
            assert r.status_code == 200, r.text
    assert server.proc.poll() is None, server.log()

    # The supervisor starts a replacement, and it answers.
    def replaced() -> set[int]:
        return server.pids_answering() - {victim, survivor}

    new = wait_for(replaced, timeout_s=45, interval_s=0.5)
    assert new, f"no new worker answered /readyz:\n{server.log()}"
    assert victim not in server.children()
    assert survivor_ws is not None
    assert _frame(survivor_ws, frame)["faces"] == 1
    survivor_ws.close()
    victim_ws.close()
