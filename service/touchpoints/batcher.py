"""The bounded background batcher: events leave the request path and reach the sink in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from service.touchpoints.sink import EventSink, SinkUnavailable
from service.touchpoints.spool import EventSpool

log = logging.getLogger(__name__)


class EventBatcher:
    """A bounded buffer drained by one background thread into an EventSink.

    `emit` never blocks (a frame must never wait on the database): events go into a deque
    and are written in batches of `batch_size` or every `interval_s`. When the buffer is
    full the oldest events are dropped and counted, as posthog-python's client does.

    With a `spool`, a batch the sink cannot write (SinkUnavailable) is never dropped: it goes
    to the spool on disk, and the same thread replays the spool through the sink with
    exponential backoff (`retry_initial_s` doubling to `retry_max_s`); while it backs off,
    new batches go straight to the spool. A spool left by a previous process is adopted and
    replayed at start. Without a spool such a batch is dropped and counted.
    """

    REPLAY_CHUNK = 500

    def __init__(
        self,
        sink: EventSink,
        *,
        batch_size: int = 50,
        interval_s: float = 1.0,
        max_buffer: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
        spool: EventSpool | None = None,
        on_replay: Callable[[int], None] | None = None,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 15.0,
    ) -> None:
        self.sink = sink
        self.batch_size = max(1, batch_size)
        self.interval_s = interval_s
        self._buf: deque[dict[str, Any]] = deque()
        self._max = max_buffer
        self._cv = threading.Condition()
        self._stop = False
        self._on_drop = on_drop
        self._spool = spool
        self._on_replay = on_replay
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = max(retry_initial_s, retry_max_s)
        self._retry_delay_s = retry_initial_s
        self._retry_at = 0.0  # monotonic time of the next replay attempt
        self.emitted = 0
        self.dropped = 0
        self.failed_batches = 0
        self.replayed = 0
        self._thread = threading.Thread(target=self._run, name="tryon-events", daemon=True)
        self._thread.start()

    @property
    def spooled(self) -> int:
        """Events waiting in the spool for the sink to come back."""
        return self._spool.pending if self._spool is not None else 0

    def emit(self, events: list[dict[str, Any]], *, flush: bool = False) -> None:
        with self._cv:
            for ev in events:
                if len(self._buf) >= self._max:
                    self._buf.popleft()
                    self._count_drop(1)
                self._buf.append(ev)
            if flush or len(self._buf) >= self.batch_size:
                self._cv.notify()

    def _count_drop(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)

    def _take(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while self._buf and len(batch) < max(self.batch_size, 500):
            batch.append(self._buf.popleft())
        return batch

    def _replay_due(self) -> bool:
        return self.spooled > 0 and time.monotonic() >= self._retry_at

    def _wait_s(self) -> float:
        if self.spooled:
            return max(0.0, min(self.interval_s, self._retry_at - time.monotonic()))
        return self.interval_s

    def _run(self) -> None:
        if self._spool is not None:
            try:
                self._spool.adopt_orphans()
            except OSError:
                log.exception("event spool: could not adopt spools left by earlier processes")
        while True:
            with self._cv:
                if len(self._buf) < self.batch_size and not self._stop and not self._replay_due():
                    self._cv.wait(self._wait_s())
                batch = self._take()
                stopping = self._stop and not self._buf
            if batch:
                self._write(batch)
            if self._replay_due():
                self._replay_chunk()
            if stopping:
                self._finish()
                return

    # -- writing, spooling, replaying ---------------------------------------------------------
    def _backoff(self) -> None:
        self._retry_at = time.monotonic() + self._retry_delay_s
        self._retry_delay_s = min(self._retry_delay_s * 2, self._retry_max_s)

    def _recovered(self) -> None:
        self._retry_delay_s = self._retry_initial_s
        self._retry_at = 0.0

    def _keep(self, events: list[dict[str, Any]]) -> None:
        """A batch the sink could not write: to the spool, or dropped without one."""
        if not events:
            return
        if self._spool is None:
            log.error("event sink unavailable; %d events lost (no spool)", len(events))
            self._count_drop(len(events))
            return
        try:
            self._spool.append(events)
        except OSError:
            log.exception("event spool: could not write; %d events lost", len(events))
            self._count_drop(len(events))

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if self.spooled and time.monotonic() < self._retry_at:
            self._keep(batch)  # backing off: the sink is down, don't knock on every batch
            return
        try:
            self.sink.emit(batch)
        except SinkUnavailable as exc:
            log.warning("event sink unavailable (%s); %d events spooled", exc, len(batch))
            self.failed_batches += 1
            self._keep(batch)
            self._backoff()
            return
        except Exception:  # the batch itself is at fault: isolate what fails alone
            log.exception("event sink failed on a batch of %d events", len(batch))
            self.failed_batches += 1
            self._one_by_one(batch)
            return
        self.emitted += len(batch)
        if self.spooled:
            self._recovered()  # the sink is back: replay now

    def _one_by_one(self, events: list[dict[str, Any]]) -> int:
        """Write each event alone; returns how many were handled (written or dropped as
        failing alone) before the sink became unavailable (the rest are kept)."""
        for i, ev in enumerate(events):
            try:
                self.sink.emit([ev])
                self.emitted += 1
            except SinkUnavailable:
                self._keep(events[i:])
                self._backoff()
                return i
            except Exception as exc:
                log.warning("event sink: an event failing alone was dropped: %s", exc)
                self._count_drop(1)
        return len(events)

    def _replay_chunk(self) -> None:
        """Replay the oldest spooled events once (the batcher's thread only)."""
        spool = self._spool
        if spool is None or not spool.pending:
            return
        try:
            n, events = spool.peek(self.REPLAY_CHUNK)
        except OSError:
            log.exception("event spool: could not read; retrying later")
            self._backoff()
            return
        try:
            if events:
                self.sink.emit(events)
        except SinkUnavailable:
            self._backoff()
            return
        except Exception:
            log.exception("event sink failed on %d spooled events", len(events))
            done = self._one_by_one_replay(events)
            if done < len(events):
                return  # unavailable again midway: the spool still holds them all
        else:
            self.emitted += len(events)
        spool.consume(n)
        self.replayed += len(events)
        if self._on_replay is not None:
            self._on_replay(len(events))
        if not spool.pending:
            log.info("event spool: replayed; the spool is empty")
            self._recovered()

    def _one_by_one_replay(self, events: list[dict[str, Any]]) -> int:
        for i, ev in enumerate(events):
            try:
                self.sink.emit([ev])
                self.emitted += 1
            except SinkUnavailable:
                self._backoff()
                return i  # nothing consumed: replays are idempotent
            except Exception as exc:
                log.warning("event sink: a spooled event failing alone was dropped: %s", exc)
                self._count_drop(1)
        return len(events)

    def _finish(self, timeout_s: float = 5.0) -> None:
        """At close: one last chance to empty the spool, then leave the rest on disk."""
        spool = self._spool
        if spool is None:
            return
        deadline = time.monotonic() + timeout_s
        self._retry_at = 0.0
        while spool.pending and time.monotonic() < deadline:
            before = spool.pending
            self._replay_chunk()
            if spool.pending >= before:
                break
        spool.close()

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout_s)
