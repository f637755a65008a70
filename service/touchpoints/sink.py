"""Where a batch of events is written: the EventSink protocol and the database sink."""

from __future__ import annotations

import logging
from typing import Any, Protocol

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
