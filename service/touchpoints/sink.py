"""Where events go off the request path: a database sink and a bounded background batcher."""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.touchpoints.service import Ingestor, IngestResult, log_rejections

log = logging.getLogger(__name__)
# A server-side event's storing API key id (the stream principal's), lifted into
# events.key_id by DatabaseEventSink; ingest() drops it from anything a client sends.
KEY_ID_FIELD = "_key_id"


class EventSink(Protocol):
    def emit(self, events: list[dict[str, Any]]) -> object: ...


class SinkUnavailable(Exception):
    """The sink could not write the batch now (the database is unreachable): retry it later.

    An EventSink raises this for "failed, retry"; returning is "written". Any other exception
    means the batch itself is at fault: the batcher then writes its events one by one and
    drops only those that fail alone.
    """


# Spool files: spool-{pid}-{random}.jsonl (one JSON event per line) beside a .lock file the
# owning process holds (flock) while it lives; a file whose lock is free was left by a
# process that is gone, and the next process to start adopts it.
_SPOOL_PREFIX = "spool-"
_COMPACT_MIN_BYTES = 1024 * 1024


class EventSpool:
    """A bounded local spool for event batches the sink failed to write (JSON lines on disk).

    Used by one thread (the batcher's). Events hold no frames or meshes (ingest's privacy
    filter), so a few hundred bytes each; beyond `max_bytes` the oldest are dropped, counted
    (`on_drop`) and logged at WARNING. Replays go through the same idempotent ingest, so a
    line replayed twice (a crash between the write and the truncation) is stored once.
    The file is created on first use only.
    """

    def __init__(
        self,
        directory: str | Path,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.max_bytes = max(1, max_bytes)
        self._on_drop = on_drop
        self._name = f"{_SPOOL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock_fd: int | None = None
        self._file: BinaryIO | None = None
        self._sizes: deque[int] = deque()  # byte length of each pending line, oldest first
        self._offset = 0  # file offset of the oldest pending line
        self._end = 0
        self.dropped = 0

    @property
    def path(self) -> Path:
        return self.dir / f"{self._name}.jsonl"

    @property
    def pending(self) -> int:
        """Events spooled and not yet replayed."""
        return len(self._sizes)

    @property
    def pending_bytes(self) -> int:
        return self._end - self._offset

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            # The lock first, then the data: a data file whose lock is free is an orphan.
            fd = os.open(self.dir / f"{self._name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd
            data = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
            self._file = os.fdopen(data, "r+b")
            self._offset = self._end = 0
        return self._file

    def append(self, events: list[dict[str, Any]]) -> None:
        """Keep these events (durably: written and fsynced); drops the oldest beyond the bound."""
        lines = []
        for ev in events:
            try:
                lines.append(json.dumps(ev, separators=(",", ":"), default=str).encode() + b"\n")
            except (TypeError, ValueError):
                log.warning("event spool: an event could not be serialized; dropped")
                self._drop(1)
        if not lines:
            return
        f = self._open()
        f.seek(self._end)
        f.write(b"".join(lines))
        f.flush()
        os.fsync(f.fileno())
        self._sizes.extend(len(line) for line in lines)
        self._end += sum(len(line) for line in lines)
        over = 0
        while self.pending_bytes > self.max_bytes and self._sizes:
            self._offset += self._sizes.popleft()
            over += 1
        if over:
            log.warning(
                "event spool full (%d bytes): dropped the %d oldest events", self.max_bytes, over
            )
            self._drop(over)
            self._compact()

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)

    def peek(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """The oldest `limit` lines: (how many lines, the events that parse)."""
        if not self._sizes or self._file is None:
            return 0, []
        n = min(limit, len(self._sizes))
        size = sum(itertools.islice(self._sizes, n))
        self._file.seek(self._offset)
        events = _parse_lines(self._file.read(size), str(self.path))
        return n, events

    def consume(self, n: int) -> None:
        """The oldest n lines are stored: forget them (the file is truncated once empty)."""
        for _ in range(min(n, len(self._sizes))):
            self._offset += self._sizes.popleft()
        if self._file is not None and not self._sizes:
            self._file.truncate(0)
            self._file.flush()
            self._offset = self._end = 0
        else:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the pending tail alone once the consumed head is most of the file."""
        f = self._file
        if f is None or self._offset < max(_COMPACT_MIN_BYTES, self._end // 2):
            return
        f.seek(self._offset)
        tail = f.read(self._end - self._offset)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as out:
            out.write(tail)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        f.close()
        self._file = open(self.path, "r+b")  # noqa: SIM115 (held open until close)
        self._offset, self._end = 0, len(tail)

    def adopt_orphans(self) -> int:
        """Take over spools left by processes that are gone; returns how many events."""
        if not self.dir.is_dir():
            return 0
        adopted = 0
        for path in sorted(self.dir.glob(f"{_SPOOL_PREFIX}*.jsonl")):
            if path == self.path:
                continue
            fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive and holds it
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue  # adopted by another process meanwhile
                events = _parse_lines(data, str(path))
                if events:
                    self.append(events)
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".tmp").unlink(missing_ok=True)
                path.with_suffix(".lock").unlink(missing_ok=True)
                adopted += len(events)
                log.warning("event spool: adopted %d events left in %s", len(events), path)
            finally:
                os.close(fd)
        return adopted

    def close(self) -> None:
        """Release the spool: an empty one is deleted, a pending one stays for the next start."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if not self._sizes:
                self.path.unlink(missing_ok=True)
            else:
                log.warning(
                    "event spool: %d events not yet stored stay in %s (replayed at next start)",
                    len(self._sizes),
                    self.path,
                )
        if self._lock_fd is not None:
            if not self._sizes:
                (self.dir / f"{self._name}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


def _parse_lines(data: bytes, where: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    bad = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(ev, dict):
            events.append(ev)
        else:
            bad += 1
    if bad:
        log.warning("event spool: %d unreadable lines skipped in %s", bad, where)
    return events


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


class DatabaseEventSink:
    """EventSink writing through the ingest path in its own short transaction per call.

    Thread-safe: every call opens its own session. Returns the IngestResult once written;
    raises SinkUnavailable when the database cannot take the batch now (the batcher spools
    it and retries), and lets a value the database refuses (DataError, IntegrityError) raise
    as it is (the batcher then isolates the event at fault).
    """

    def __init__(
        self, factory: sessionmaker[Session], ingestor: Ingestor, *, source: str = "stream"
    ) -> None:
        self._factory = factory
        self._ingest = ingestor
        self._source = source

    def emit(self, events: list[dict[str, Any]]) -> IngestResult:
        if not events:
            return IngestResult()
        # Each event's storing key (KEY_ID_FIELD, set by the server) goes to events.key_id.
        by_key: dict[int | None, list[dict[str, Any]]] = {}
        for ev in events:
            key_id = ev.get(KEY_ID_FIELD)
            ev = {k: v for k, v in ev.items() if k != KEY_ID_FIELD}
            by_key.setdefault(key_id if isinstance(key_id, int) else None, []).append(ev)
        result = IngestResult()
        try:
            with self._factory.begin() as session:
                for key_id, group in by_key.items():
                    part = self._ingest(session, group, source=self._source, key_id=key_id)
                    result.inserted += part.inserted
                    result.duplicates += part.duplicates
                    result.rejected += part.rejected
                    result.results.extend(part.results)
        except (DataError, IntegrityError, ProgrammingError):
            raise
        except SQLAlchemyError as exc:  # unreachable, locked, restarting: worth a retry
            raise SinkUnavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        log_rejections(result, len(events), "event sink", logging.WARNING)
        return result
