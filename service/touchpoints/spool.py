"""The on-disk event spool: batches the sink could not write, kept as JSON lines to replay."""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

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
