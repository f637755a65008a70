"""A stream's per-frame work: its pipeline, frame slot, selection changes and result frames."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from service.runtime import Runtime
from service.tryon.memory import release_free_memory
from service.tryon.stream_events import TryOnSession
from service.tryon.stream_protocol import SelectGlasses, Selecting, SelectShade, SetIntensity
from service.tryon.workers import LatestFrameSlot
from vision.landmarks import RunningMode
from vision.pipeline import TryOnPipeline
from vision.tryon_result import TryOnResult

Outcome = TryOnResult | BaseException


def _release(pipe: TryOnPipeline) -> None:
    """On a worker: close a stream's pipeline, then return freed heap pages to the OS."""
    pipe.close()
    release_free_memory()


class StreamFrames:
    """One stream's frames: at most one on a worker and one waiting (latest frame wins).

    Results come out of `results` in order on the event loop; when the client reads more
    slowly than frames are processed, only the newest two results are kept.
    """

    def __init__(self, rt: Runtime, events: TryOnSession, *, region: bool = False) -> None:
        self.rt = rt
        self.events = events
        self.region = region  # reply with the changed box only (?reply=region)
        self.pipe: TryOnPipeline | None = None
        self._lock = threading.Lock()  # selection changes never interleave with a frame
        self.results: asyncio.Queue[tuple[int, Outcome]] = asyncio.Queue()
        self.slot: LatestFrameSlot[TryOnResult] = LatestFrameSlot(
            rt.pool, self._work, self._deliver, self._dropped
        )
        self.frame_id = 0
        self.last_sent = 0
        self.sent = 0
        self.results_dropped = 0  # processed, but the client read too slowly to get them

    async def open(self) -> None:
        made = self.rt.pool.submit_async(self.rt.pipelines.make, RunningMode.VIDEO)
        try:
            self.pipe = await asyncio.shield(made)
        except asyncio.CancelledError:
            # The connection went away while its tracker was being built on a worker: close
            # that tracker when it is ready, instead of leaving its graph to the GC.
            made.add_done_callback(self._close_late)
            raise

    def _close_late(self, made: asyncio.Future[TryOnPipeline]) -> None:
        if not made.cancelled() and made.exception() is None:
            self.rt.pool.submit_async(_release, made.result())

    async def close(self) -> None:
        """Stop taking frames, wait for the one in flight, release the pipeline on a worker
        (its MediaPipe graph and buffers) and give the freed memory back to the OS."""
        await self.slot.close()
        pipe, self.pipe = self.pipe, None
        while not self.results.empty():  # results never sent hold whole frames
            self.results.get_nowait()
            self.results.task_done()
        if pipe is not None:
            await self.rt.pool.submit_async(_release, pipe)

    def offer(self, data: bytes) -> None:
        self.frame_id += 1
        self.slot.offer(self.frame_id, (data, time.perf_counter()))

    # -- worker side ---------------------------------------------------------------------
    def _work(self, item: tuple[bytes, float], frame_id: int) -> TryOnResult:
        data, t_recv = item
        assert self.pipe is not None
        with self._lock:
            return self.pipe.process_bytes(data, t_s=t_recv, region=self.region)

    def apply(self, msg: Selecting) -> dict[str, Any]:
        """Change the selection (blocking: run on a thread); returns the new selection."""
        assert self.pipe is not None
        with self._lock:
            if isinstance(msg, SelectGlasses):
                sel = self.pipe.select_glasses(msg.sku, msg.variant)
            elif isinstance(msg, SelectShade):
                sel = self.pipe.select_shade(msg.shade, msg.intensity, msg.finish)
            elif isinstance(msg, SetIntensity):
                sel = self.pipe.set_intensity(msg.value)
            else:
                self.pipe.clear()
                sel = self.pipe.selection
            return sel.to_dict()

    # -- loop side -----------------------------------------------------------------------
    def _deliver(self, frame_id: int, outcome: Outcome) -> None:
        # The client reads slower than we produce: keep only the newest result.
        while self.results.qsize() >= 2:
            self.results.get_nowait()
            self.results.task_done()
            self._dropped(frame_id)
            self.results_dropped += 1
        self.results.put_nowait((frame_id, outcome))

    def _dropped(self, _frame_id: int) -> None:
        self.rt.metrics.dropped_frames.inc()

    def frame_message(self, frame_id: int, result: TryOnResult) -> dict[str, Any]:
        """The JSON sent before a result's JPEG; also feeds the session's touchpoints."""
        self.rt.metrics.observe(result.timings_ms, "stream")
        s = result.summary()
        self.events.frame(result.applied, s.get("measurements"))
        return {
            "type": "frame",
            "frame_id": frame_id,
            "faces": s["faces"],
            "applied": s["applied"],
            "selection": s["selection"],
            "timings_ms": s["timings_ms"],
            "pose": s["pose"],
            "measurements": s.get("measurements"),
            # For the product this frame was processed with (not the current selection).
            "fit": s.get("fit"),
            "dropped": self.slot.stats.dropped + self.results_dropped,
            "bytes": len(result.jpeg or b""),
            # ?reply=region: where the JPEG goes on the frame the client sent ([x, y, w, h];
            # w = 0: nothing changed, show that frame as it is); absent: a whole frame.
            **({"region": list(result.region)} if result.region is not None else {}),
        }

    def summary(self) -> dict[str, Any]:
        stats = self.slot.stats
        return {
            "type": "end",
            "frames_received": stats.received,
            "frames_processed": stats.processed,
            "frames_sent": self.sent,
            "dropped": stats.dropped,
            "results_dropped": self.results_dropped,
            "errors": stats.errors,
        }
