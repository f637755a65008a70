"""The retention job: every feature's rows past the retention window, from one explicit list."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from service.db.base import utcnow
from service.shoppers.models import ErasureLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purger:
    """One feature's retention: delete its rows older than `cutoff` (now - retention days)."""

    name: str
    tables: tuple[str, ...]
    purge: Callable[[Session, datetime, datetime], Mapping[str, int]]


def purge_older_than(session: Session, days: int, purgers: Sequence[Purger]) -> dict[str, int]:
    """Run every purger with cutoff = now - days; aggregates (rollups) hold no id and stay."""
    if days <= 0:
        raise ValueError("retention days must be positive")
    now = utcnow()
    cutoff = now - timedelta(days=days)
    counts: dict[str, int] = {}
    for purger in purgers:
        for key, n in purger.purge(session, cutoff, now).items():
            counts[key] = counts.get(key, 0) + int(n)
    session.add(ErasureLog(subject_hash="-", kind="retention", counts={"days": days, **counts}))
    return counts


def run_retention(
    factory: sessionmaker[Session], days: int, purgers: Sequence[Purger]
) -> dict[str, int]:
    """One purge in its own transaction (start-up, admin endpoint)."""
    with factory.begin() as session:
        counts = purge_older_than(session, days, purgers)
    log.info("retention (%d days): %s", days, counts)
    return counts
