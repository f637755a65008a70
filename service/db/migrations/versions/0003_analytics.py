"""analytics feature: two indexes on events that keep the reports off full-table reads.

- ix_events_face_width: partial, only events carrying a numeric properties.face_width_mm
  (a few percent of all events), so the fit-gap report never parses every event's JSON.
- ix_events_analytics: (event, timestamp) plus the columns the product, dwell and funnel
  queries read, so those are index-only range scans instead of one table lookup per row.

Revision ID: 0003_analytics
Revises: 0001_events
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_analytics"
down_revision: str | Sequence[str] | None = "0001_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must match service.analytics.fitgap.FACE_WIDTH_PRESENT_* (there with the table prefix).
_PG_WHERE = "jsonb_typeof(properties -> 'face_width_mm') = 'number'"
_SQLITE_WHERE = "json_type(properties, '$.face_width_mm') IN ('real', 'integer')"
ANALYTICS_COLUMNS = [
    "event",
    "timestamp",
    "sku",
    "variant",
    "shopper_id",
    "dwell_ms",
    "channel",
    "store_id",
]


def upgrade() -> None:
    where = _PG_WHERE if op.get_bind().dialect.name == "postgresql" else _SQLITE_WHERE
    op.execute(f"CREATE INDEX ix_events_face_width ON events (shopper_id, timestamp) WHERE {where}")
    op.create_index("ix_events_analytics", "events", ANALYTICS_COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_events_analytics", table_name="events")
    op.execute("DROP INDEX ix_events_face_width")
