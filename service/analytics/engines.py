"""Which engine answers a report: DuckDB over the event lake (default) or the SQL store.

`AnalyticsRuntime` (Runtime.analytics) holds the lake and the process's DuckDB database.
`source()` hands a report its engine, with the data's freshness: DuckDB brings the lake up
to date first when it is older than `lake_max_staleness_s`; the SQL store is always live.
The rollup-backed `metrics=counts` reports read the SQL store on both engines (their daily
rows outlive retention). A lake that cannot be used (another database's, an I/O error) falls
back to the SQL store for that report and says so (`engine: "sql"`, logged).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.analytics import queries
from service.analytics.definitions import Filters
from service.analytics.duck import DuckReports
from service.analytics.duck_engine import DuckEngine
from service.analytics.fitgap import consented_face_widths
from service.analytics.lake import EventLake
from service.analytics.lake_layout import LakeMismatch, lake_location
from service.settings import Settings

log = logging.getLogger(__name__)
EngineName = Literal["duckdb", "sql"]
Row = dict[str, Any]


class ReportSource(Protocol):
    """The raw-event reports, answered by one engine."""

    engine: str
    as_of: datetime

    def product_summary(self, f: Filters, group_by: Sequence[str]) -> list[Row]: ...
    def funnel(self, f: Filters, window_hours: float, group_by: Sequence[str]) -> list[Row]: ...
    def shade_popularity(self, f: Filters, by_skin_tone: bool) -> list[Row]: ...
    def nps(self, f: Filters) -> list[Row]: ...
    def consented_face_widths(self, f: Filters) -> np.ndarray: ...


class SqlReports:
    """The reports on the SQL store (service.analytics.queries): the parity reference."""

    engine = "sql"

    def __init__(self, session: Session) -> None:
        self.session = session
        self.as_of = datetime.now(UTC)

    def product_summary(self, f: Filters, group_by: Sequence[str]) -> list[Row]:
        return queries.product_summary(self.session, f, group_by)

    def funnel(self, f: Filters, window_hours: float, group_by: Sequence[str]) -> list[Row]:
        return queries.funnel(self.session, f, window_hours, group_by)

    def shade_popularity(self, f: Filters, by_skin_tone: bool) -> list[Row]:
        return queries.shade_popularity(self.session, f, by_skin_tone)

    def nps(self, f: Filters) -> list[Row]:
        return queries.nps(self.session, f)

    def consented_face_widths(self, f: Filters) -> np.ndarray:
        return consented_face_widths(self.session, f)


@dataclass
class AnalyticsRuntime:
    engine: EngineName
    lake: EventLake
    duck: DuckEngine
    db: Engine
    max_staleness_s: float

    def source(self, session: Session, engine: EngineName | None = None) -> ReportSource:
        """The engine for one report (`engine` overrides the setting: parity checks)."""
        if (engine or self.engine) == "sql":
            return SqlReports(session)
        try:
            state = self.lake.ensure_fresh(self.db, self.max_staleness_s)
        except (LakeMismatch, OSError):
            log.exception("event lake unusable; this report reads the SQL store")
            return SqlReports(session)
        return DuckReports(self.duck, session, state)

    def close(self) -> None:
        self.duck.close()


def build_analytics(settings: Settings, db: Engine) -> AnalyticsRuntime:
    lake = EventLake(
        lake_location(settings.lake_dir, settings.database_url),
        export_chunk_rows=settings.lake_export_chunk_rows,
        compact_min_files=settings.lake_compact_min_files,
    )
    return AnalyticsRuntime(
        engine=settings.analytics_engine,
        lake=lake,
        duck=DuckEngine(
            lake, memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
        ),
        db=db,
        max_staleness_s=settings.lake_max_staleness_s,
    )


def lake_for(settings: Settings) -> EventLake:
    """The lake of these settings (erasers and purgers built outside a Runtime)."""
    return EventLake(
        lake_location(settings.lake_dir, settings.database_url),
        export_chunk_rows=settings.lake_export_chunk_rows,
        compact_min_files=settings.lake_compact_min_files,
    )
