"""Rejected touchpoints made visible: counted by reason, logged at WARNING, kept for admins.

`RejectionRecorder` is the Ingestor's `on_rejected` (service.wiring builds it with the
metrics counter `tryon_events_rejected_total{reason,source}`): every source (POST
/v1/events, the Segment routes, the stream sink) goes through it. The rows it keeps in
`event_rejections` (shared by every replica, capped to the newest `keep`) hold no shopper id
and no property value: time, source, event name, message id, reason code, message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from service.touchpoints.models import EventRejection
from service.touchpoints.service import IngestResult, log_rejections

log = logging.getLogger(__name__)

# Counts one rejection: (reason code, source).
CountRejection = Callable[[str, str], None]
MAX_MESSAGE = 300


def _event_name(raw: Any) -> str | None:
    name = raw.get("event") if isinstance(raw, Mapping) else None
    return name[:64] if isinstance(name, str) and name else None


@dataclass(frozen=True)
class RejectionRecorder:
    """Counts, logs and stores the rejected events of one ingest call (its transaction)."""

    count: CountRejection | None = None
    keep: int = 1000

    def __call__(
        self, session: Session, source: str, events: Sequence[Any], result: IngestResult
    ) -> None:
        rejected = [r for r in result.results if r.status == "rejected"]
        if not rejected:
            return
        log_rejections(result, len(events), source, logging.WARNING)
        now = datetime.now(UTC)
        rows = []
        for r in rejected:
            error = r.error or {}
            code = str(error.get("code", "invalid"))[:32]
            if self.count is not None:
                self.count(code, source)
            raw = events[r.index] if 0 <= r.index < len(events) else None
            mid = r.message_id if isinstance(r.message_id, str) else None
            rows.append(
                {
                    "at": now,
                    "source": source[:16],
                    "event": _event_name(raw),
                    "message_id": mid[:64] if mid else None,
                    "code": code,
                    "message": _message(code, error)[:MAX_MESSAGE],
                }
            )
        if self.keep <= 0:
            return
        session.execute(insert(EventRejection), rows[-self.keep :])
        _trim(session, self.keep)


def _message(code: str, error: Mapping[str, Any]) -> str:
    """The reason without any value the client sent: field paths and error types only."""
    if code == "forbidden_shopper":  # its message names the token's shopper id
        return "a session token may only send events of its own shopper"
    message = str(error.get("message", ""))
    detail = error.get("detail")
    if code == "invalid" and isinstance(detail, list):
        where = [
            ".".join(str(p) for p in d.get("loc", ())) + f" ({d.get('type', '?')})"
            for d in detail[:5]
            if isinstance(d, Mapping)
        ]
        if where:
            message += ": " + ", ".join(where)
    return message


def _trim(session: Session, keep: int) -> None:
    """Delete all but the newest `keep` rows (by id: ids grow with time on every backend)."""
    newest = session.scalar(select(func.max(EventRejection.id)))
    if newest is not None and newest > keep:
        session.execute(delete(EventRejection).where(EventRejection.id <= newest - keep))


def recent(session: Session, limit: int = 100, *, code: str | None = None) -> list[dict[str, Any]]:
    """The newest rejections first."""
    stmt = select(EventRejection).order_by(EventRejection.id.desc()).limit(limit)
    if code:
        stmt = stmt.where(EventRejection.code == code)
    return [
        {
            "at": r.at.isoformat(),
            "source": r.source,
            "event": r.event,
            "message_id": r.message_id,
            "code": r.code,
            "message": r.message,
        }
        for r in session.scalars(stmt)
    ]
