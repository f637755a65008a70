"""Micro-batching across streams: concurrent requests to one model run as one batch."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vision.errors import LandmarkError

RunFn = Callable[[np.ndarray], list[np.ndarray]]


@dataclass
class _Request:
    x: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: list[np.ndarray] | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Gathers the rows submitted by concurrent callers for at most `window_ms` (or until every
    registered stream has a request in, or `max_batch` rows) and runs them through `fn` as one
    batch. The queue is bounded (`max_queue` requests; a full queue makes `submit` wait, then
    fail with LandmarkError); requests run in arrival order, and each stream submits one frame
    at a time, so every stream's frame order is kept.
    """

    def __init__(self, fn: RunFn, window_ms: float = 2.0, max_batch: int = 64,
                 max_queue: int = 256, name: str = "landmark-batcher") -> None:
        self._fn = fn
        self._window = window_ms / 1e3
        self._max_batch = max_batch
        self._q: queue.Queue[_Request | None] = queue.Queue(maxsize=max_queue)
        self._clients = 0
        self._clients_lock = threading.Lock()
        self.batches = 0
        self.rows = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def register(self) -> None:
        """A stream that will submit: with all registered streams in, a batch need not wait."""
        with self._clients_lock:
            self._clients += 1

    def unregister(self) -> None:
        with self._clients_lock:
            self._clients = max(self._clients - 1, 0)

    def submit(self, x: np.ndarray, timeout_s: float = 10.0) -> list[np.ndarray]:
        """The model's outputs for the rows of x (len(x) rows each)."""
        req = _Request(np.ascontiguousarray(x))
        try:
            self._q.put(req, timeout=timeout_s)
        except queue.Full:
            raise LandmarkError("landmark batch queue is full") from None
        if not req.done.wait(timeout_s):
            raise LandmarkError("landmark batch timed out")
        if req.error is not None:
            raise LandmarkError(f"landmark model failed: {req.error}") from req.error
        assert req.result is not None
        return req.result

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            rows = len(first.x)
            deadline = time.perf_counter() + self._window
            stop = False
            while rows < self._max_batch and len(batch) < max(self._clients, 1):
                left = deadline - time.perf_counter()
                try:
                    nxt = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                rows += len(nxt.x)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[_Request]) -> None:
        try:
            x = batch[0].x if len(batch) == 1 else np.concatenate([r.x for r in batch])
            outs = self._fn(x)
            self.batches += 1
            self.rows += len(x)
            start = 0
            for r in batch:
                n = len(r.x)
                r.result = [o[start:start + n] for o in outs]
                start += n
        except Exception as exc:  # handed to every waiting caller, the loop goes on
            for r in batch:
                r.error = exc
        for r in batch:
            r.done.set()
