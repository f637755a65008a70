"""The bounded worker pool that runs pipelines off the event loop, and per-stream frame slots."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from service.errors import ServiceError

T = TypeVar("T")


class Busy(ServiceError):
    status_code = 503
    code = "busy"


class WorkerPool:
    """A fixed number of threads for CPU work (MediaPipe and GL release the GIL).

    Each thread keeps its own GL renderer and image-mode tracker (thread-locals in the
    callers). Backlog is bounded: single-frame requests beyond `max_pending` waiting get
    Busy (503); streams keep at most one frame in flight each and are capped separately.
    """

    def __init__(self, threads: int, max_pending: int) -> None:
        self.threads = max(1, threads)
        self.max_pending = max(1, max_pending)
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="tryon-worker")
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on a worker; Busy when too many requests are already waiting."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise Busy(f"{self._pending} frames already waiting for a worker; retry shortly")
            self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            with self._lock:
                self._pending -= 1

    def submit_async(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Stream path: no backlog check (each stream has at most one job in flight)."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class SlotStats:
    received: int = 0
    processed: int = 0
    dropped: int = 0
    errors: int = 0


class LatestFrameSlot(Generic[T]):
    """One stream's frames: at most one running and one waiting (latest frame wins).

    `offer` is called on the event loop for every incoming frame. When a frame is already
    waiting, the new one replaces it and the old one counts as dropped, so the backlog never
    exceeds one frame and latency does not grow with load. Finished results are handed to
    `on_result(frame_id, result_or_exception)` on the event loop, in order.
    """

    def __init__(
        self,
        pool: WorkerPool,
        work: Callable[[Any, int], T],
        on_result: Callable[[int, T | BaseException], None],
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._pool = pool
        self._work = work
        self._on_result = on_result
        self._on_drop = on_drop
        self._waiting: tuple[int, Any] | None = None
        self._running: asyncio.Future[T] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self.stats = SlotStats()

    @property
    def busy(self) -> bool:
        return self._running is not None

    def offer(self, frame_id: int, data: Any) -> bool:
        """Queue a frame; True when it replaced (dropped) a stale waiting frame."""
        if self._closed:
            return False
        self.stats.received += 1
        replaced = False
        if self._waiting is not None:
            self._drop(self._waiting[0])
            replaced = True
        self._waiting = (frame_id, data)
        self._pump()
        return replaced

    def _drop(self, frame_id: int) -> None:
        self.stats.dropped += 1
        if self._on_drop is not None:
            self._on_drop(frame_id)

    def _pump(self) -> None:
        if self._running is not None or self._waiting is None or self._closed:
            return
        frame_id, data = self._waiting
        self._waiting = None
        self._idle.clear()
        fut = self._pool.submit_async(self._work, data, frame_id)
        self._running = fut
        fut.add_done_callback(lambda f: self._done(frame_id, f))

    def _done(self, frame_id: int, fut: asyncio.Future[T]) -> None:
        self._running = None
        if fut.cancelled():
            outcome: T | BaseException = asyncio.CancelledError()
        else:
            exc = fut.exception()
            outcome = exc if exc is not None else fut.result()
        if isinstance(outcome, BaseException):
            self.stats.errors += 1
        else:
            self.stats.processed += 1
        try:
            self._on_result(frame_id, outcome)
        finally:
            self._pump()
            if self._running is None:
                self._idle.set()

    async def drain(self, discard_waiting: bool = True) -> None:
        """Wait for the running frame; the waiting one is dropped (or processed too)."""
        if discard_waiting and self._waiting is not None:
            self._drop(self._waiting[0])
            self._waiting = None
        await self._idle.wait()

    async def close(self) -> None:
        """Stop taking frames and wait for the one in flight (its pipeline is still in use)."""
        await self.drain(discard_waiting=True)
        self._closed = True


class StreamRegistry:
    """Counts this replica's open streams against max_streams, in memory: the CPU they use is
    this replica's. The per-principal cap (max_streams_per_principal) is not counted here but
    by every replica together, as leases in Redis or the database (stream_leases.StreamLeases),
    taken once a stream has a slot here."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """A slot, or False: the replica is at max_streams."""
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1
