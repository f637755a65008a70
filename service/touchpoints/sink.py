"""Where events go off the request path: a database sink and a bounded background batcher."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.touchpoints.service import Ingestor, IngestResult, log_rejections

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def emit(self, events: list[dict[str, Any]]) -> object: ...


class EventBatcher:
    """A bounded buffer drained by one background thread into an EventSink.

    `emit` never blocks (a frame must never wait on the database): events go into a deque
    and are written in batches of `batch_size` or every `interval_s`. When the buffer is
    full the oldest events are dropped and counted, as posthog-python's client does.
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        batch_size: int = 50,
        interval_s: float = 1.0,
        max_buffer: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.sink = sink
        self.batch_size = max(1, batch_size)
        self.interval_s = interval_s
        self._buf: deque[dict[str, Any]] = deque()
        self._max = max_buffer
        self._cv = threading.Condition()
        self._stop = False
        self._on_drop = on_drop
        self.emitted = 0
        self.dropped = 0
        self.failed_batches = 0
        self._thread = threading.Thread(target=self._run, name="tryon-events", daemon=True)
        self._thread.start()

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

    def _run(self) -> None:
        while True:
            with self._cv:
                if len(self._buf) < self.batch_size and not self._stop:
                    self._cv.wait(self.interval_s)
                batch = self._take()
                stopping = self._stop and not self._buf
            if batch:
                self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.sink.emit(batch)
            self.emitted += len(batch)
        except Exception:  # a failing sink must not kill the thread or any stream
            log.exception("event sink failed; %d events lost", len(batch))
            self.failed_batches += 1
            self._count_drop(len(batch))

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout_s)


class DatabaseEventSink:
    """EventSink writing through the ingest path in its own short transaction per call.

    Thread-safe: every call opens its own session. Failures are logged and swallowed so a
    database hiccup never takes a try-on stream down with it.
    """

    def __init__(
        self, factory: sessionmaker[Session], ingestor: Ingestor, *, source: str = "stream"
    ) -> None:
        self._factory = factory
        self._ingest = ingestor
        self._source = source

    def emit(self, events: list[dict[str, Any]]) -> IngestResult | None:
        if not events:
            return IngestResult()
        try:
            with self._factory.begin() as session:
                result = self._ingest(session, events, source=self._source)
        except SQLAlchemyError:
            log.exception("event sink: dropped a batch of %d events", len(events))
            return None
        log_rejections(result, len(events), "event sink", logging.WARNING)
        return result
