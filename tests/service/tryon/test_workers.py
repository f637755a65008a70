"""Latest-frame-wins slot, bounded worker pool and the stream event batcher, deterministically."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from service.touchpoints.batcher import EventBatcher
from service.touchpoints.events import Who
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
        # Applied events wait for min_dwell_s (1 s) of showing: here they close with the switch
        # and the end that ended their dwell.
        assert [e["event"] for e in events] == [
            "Try-On Started", "Frame Applied", "Try-On Dwell", "Snapshot Captured",
            "Shade Applied", "Try-On Dwell",
        ]
        dwell = [e["properties"] for e in events if e["event"] == "Try-On Dwell"]
        assert dwell[0]["dwell_ms"] == 2500 and dwell[0]["sku"] == "A"
        assert dwell[1]["dwell_ms"] == 1000 and dwell[1]["shade"] == "red"
        assert dwell[1]["session_end"] is True and dwell[1]["session_ms"] == 3500
        assert dwell[1]["try_ons"] == 2 and dwell[1]["short_selections"] == 0
        assert all(e["kiosk_id"] == "k7" and e["channel"] == "kiosk" for e in events)
        assert len({e["message_id"] for e in events}) == len(events)

    def test_slider_drag_is_one_try_on(self) -> None:
        """26 intensity changes in 2 s of one shade: one Shade Applied, one dwell."""
        emitted: list[dict[str, Any]] = []
        now = [10.0]
        session = TryOnSession(Who("anon-2"), emit=emitted.extend, clock=lambda: now[0],
                               min_dwell_s=1.0)
        session.select({"kind": "shade", "shade": "cherry-gloss", "intensity": 0.2,
                         "finish": "gloss", "sku": "LIP-CHERRY-GLOSS"})
        for i in range(26):
            session.frame(applied=True)
            now[0] += 2.0 / 26
            session.select({"kind": "shade", "shade": "cherry-gloss",
                            "intensity": round(0.2 + 0.03 * i, 2), "finish": "gloss",
                            "sku": "LIP-CHERRY-GLOSS"})
        session.frame(applied=True)
        session.end(frames=27, dropped=0)
        names = [e["event"] for e in emitted]
        assert names.count("Shade Applied") == 1 and names.count("Try-On Dwell") == 1
        applied = next(e for e in emitted if e["event"] == "Shade Applied")
        assert applied["properties"]["sku"] == "LIP-CHERRY-GLOSS"
        dwell = next(e for e in emitted if e["event"] == "Try-On Dwell")["properties"]
        assert 1900 <= dwell["dwell_ms"] <= 2100
        assert dwell["intensity"] == 0.95  # the last adjustment
        assert dwell["adjustments"] == 26 and dwell["try_ons"] == 1

    def test_short_selections_are_not_try_ons(self) -> None:
        emitted: list[dict[str, Any]] = []
        now = [0.0]
        session = TryOnSession(Who("anon-3"), emit=emitted.extend, clock=lambda: now[0],
                               min_dwell_s=1.0)
        for sku in ("A", "B", "C"):  # flicked through, 0.3 s each
            session.select({"kind": "glasses", "sku": sku, "variant": "black"})
            session.frame(applied=True)
            now[0] += 0.3
        session.select({"kind": "glasses", "sku": "D", "variant": "black"})
        now[0] += 0.5  # not yet drawn: time before the first applied frame does not count
        session.frame(applied=True)
        now[0] += 0.9
        session.frame(applied=True)
        assert [e["event"] for e in emitted] == ["Try-On Started"]
        now[0] += 0.2
        session.frame(applied=True)  # shown 1.1 s: now a try-on
        assert emitted[-1]["event"] == "Frame Applied" and emitted[-1]["properties"]["sku"] == "D"
        session.end(frames=6, dropped=0)
        names = [e["event"] for e in emitted]
        assert names == ["Try-On Started", "Frame Applied", "Try-On Dwell"]
        dwell = emitted[-1]["properties"]
        assert dwell["sku"] == "D" and dwell["dwell_ms"] == 1100
        assert dwell["short_selections"] == 3 and dwell["try_ons"] == 1

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
