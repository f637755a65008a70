"""Touchpoint events: schemas, the one ingest path, the stream sink, Segment compatibility."""

from service.touchpoints.service import (
    DatabaseEventSink,
    EventResult,
    EventSink,
    IngestResult,
    ingest,
    new_event,
)

__all__ = [
    "DatabaseEventSink",
    "EventResult",
    "EventSink",
    "IngestResult",
    "ingest",
    "new_event",
]
