"""Latest-frame-wins slot, bounded worker pool and the stream event batcher, deterministically."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from service.touchpoints.events import Who
from service.touchpoints.sink import EventBatcher
from service.tryon.stream_events import TryOnSession
from service.tryon.workers import Busy, LatestFrameSlot, WorkerPool


class TestLatestFrameSlot:
    def test_waiting_frame_is_replaced_and_counted(self) -> None:
        async def scenario() -> tuple[list[int], Any]:
            pool = WorkerPool(threads=1, max_pending=4)
            gate = threading.Event()
            done: list[int] = []

            def work(item: str, frame_id: int) -> str:
                gate.wait(10)  # the first frame blocks until every other frame has arrived
                return item

            slot = LatestFrameSlot(pool, work, lambda fid, _res: done.append(fid))
            assert slot.offer(1, "a") is False  # starts at once
            assert slot.offer(2, "b") is False  # waits
            assert slot.offer(3, "c") is True  # replaces 2
            assert slot.offer(4, "d") is True  # replaces 3
            gate.set()
            await slot.drain(discard_waiting=False)
            pool.shutdown()
            return done, slot.stats

        done, stats = asyncio.run(scenario())
        assert done == [1, 4]
        assert (stats.received, stats.processed, stats.dropped) == (4, 2, 2)

    def test_close_discards_the_waiting_frame_and_reports_errors(self) -> None:
        async def scenario() -> tuple[list[Any], Any]:
            pool = WorkerPool(threads=1, max_pending=4)
            out: list[Any] = []

            def work(item: int, frame_id: int) -> int:
                if item < 0:
                    raise ValueError("bad frame")
                return item

            slot = LatestFrameSlot(pool, work, lambda fid, res: out.append(res))
            slot.offer(1, -1)
            slot.offer(2, 5)
            await slot.drain(discard_waiting=False)
            slot.offer(3, 7)
            slot.offer(4, 8)
            await slot.close()
            assert slot.offer(5, 9) is False
            pool.shutdown()
            return out, slot.stats

        out, stats = asyncio.run(scenario())
        assert isinstance(out[0], ValueError) and out[1:] == [5, 7]
        assert stats.errors == 1 and stats.dropped == 1 and stats.received == 4


class TestWorkerPool:
    def test_backlog_is_bounded(self) -> None:
        async def scenario() -> list[Any]:
            pool = WorkerPool(threads=1, max_pending=2)
            gate = threading.Event()
            first = asyncio.ensure_future(pool.run(gate.wait, 10))
            second = asyncio.ensure_future(pool.run(gate.wait, 10))
            await asyncio.sleep(0)  # let both register as pending
            with pytest.raises(Busy):
                await pool.run(gate.wait, 10)
            gate.set()
            results = await asyncio.gather(first, second)
            pool.shutdown()
            return results

        assert asyncio.run(scenario()) == [True, True]


class ListSink:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.cv = threading.Condition()

    def emit(self, events: list[dict[str, Any]]) -> None:
        with self.cv:
            self.batches.append(events)
            self.cv.notify_all()


class TestEvents:
    def test_session_events_and_dwell(self) -> None:
        sink, now = ListSink(), [100.0]
        batcher = EventBatcher(sink, batch_size=100, interval_s=30)
        session = TryOnSession(Who("anon-1", "kiosk", "sess-1", kiosk_id="k7"),
                               emit=batcher.emit, clock=lambda: now[0])
        session.select({"kind": "glasses", "sku": "A", "variant": "black"})
        session.frame(applied=False)
        session.frame(applied=True)
        session.frame(applied=True)  # "applied" once per selection
        now[0] += 2.5
        session.select({"kind": "shade", "shade": "red", "intensity": 0.5, "finish": "gloss"})
        session.frame(applied=True)
        session.snapshot(frame_id=4)
        now[0] += 1.0
        session.end(frames=4, dropped=1)
        batcher.close()  # flushes what is left
        events = [e for b in sink.batches for e in b]
        assert [e["event"] for e in events] == [
            "Try-On Started", "Frame Applied", "Try-On Dwell", "Shade Applied",
            "Snapshot Captured", "Try-On Dwell",
        ]
        dwell = [e["properties"] for e in events if e["event"] == "Try-On Dwell"]
        assert dwell[0]["dwell_ms"] == 2500 and dwell[0]["sku"] == "A"
        assert dwell[1]["dwell_ms"] == 1000 and dwell[1]["shade"] == "red"
        assert dwell[1]["session_end"] is True and dwell[1]["session_ms"] == 3500
        assert all(e["kiosk_id"] == "k7" and e["channel"] == "kiosk" for e in events)
        assert len({e["message_id"] for e in events}) == len(events)

    def test_batcher_is_bounded_and_survives_a_failing_sink(self) -> None:
        class Broken:
            def emit(self, events: list[dict[str, Any]]) -> None:
                raise RuntimeError("database down")

        dropped: list[int] = []
        batcher = EventBatcher(Broken(), batch_size=1000, interval_s=30, max_buffer=5,
                               on_drop=dropped.append)
        batcher.emit([{"n": i} for i in range(8)])  # 3 over the buffer: oldest dropped
        batcher.close()
        assert sum(dropped) == 8 and batcher.failed_batches == 1 and batcher.emitted == 0
