"""purge_older_than(): the retention job deleting raw events past the retention window."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.base import utcnow
from service.db.models import ErasureLog, Event, HandoffToken

log = logging.getLogger(__name__)

# Spent or expired hand-off tokens are kept a day (to answer "expired" rather than "unknown").
HANDOFF_GRACE = timedelta(days=1)
# Delete in chunks so a first purge of millions of rows never holds one giant transaction lock.
CHUNK = 50_000


def purge_older_than(session: Session, days: int) -> dict[str, int]:
    """Delete raw events with timestamp older than `days` days, and stale hand-off tokens.

    Aggregates (analytics rollups) carry no shopper id and are left alone.
    """
    if days <= 0:
        raise ValueError("retention days must be positive")
    now = utcnow()
    cutoff = now - timedelta(days=days)
    events = 0
    while True:
        ids = select(Event.id).where(Event.timestamp < cutoff).limit(CHUNK).scalar_subquery()
        n = session.execute(delete(Event).where(Event.id.in_(ids))).rowcount
        events += n
        if n < CHUNK:
            break
    tokens = session.execute(
        delete(HandoffToken).where(HandoffToken.expires_at < now - HANDOFF_GRACE)
    ).rowcount
    counts = {"events": events, "handoff_tokens": tokens}
    session.add(ErasureLog(subject_hash="-", kind="retention", counts={"days": days, **counts}))
    return counts


def run_retention(factory: sessionmaker[Session], days: int) -> dict[str, int]:
    """One purge in its own transaction (start-up, admin endpoint)."""
    with factory.begin() as session:
        counts = purge_older_than(session, days)
    log.info("retention (%d days): %s", days, counts)
    return counts
