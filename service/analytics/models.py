"""Indexes analytics adds to the events table (created by migration 0003_analytics).

Declared here too so the schema in metadata matches the database (Alembic autogenerate,
create_all in tools); no tables of its own: reports read `events` directly.
"""

from __future__ import annotations

from sqlalchemy import Index, text

from service.db.models import Event

# Index-only range scans for the product, dwell and funnel reports.
ix_events_analytics = Index(
    "ix_events_analytics",
    Event.event,
    Event.timestamp,
    Event.sku,
    Event.variant,
    Event.shopper_id,
    Event.dwell_ms,
    Event.channel,
    Event.store_id,
)
# Partial: only events carrying a numeric face width (the fit-gap report's rows).
ix_events_face_width = Index(
    "ix_events_face_width",
    Event.shopper_id,
    Event.timestamp,
    sqlite_where=text("json_type(properties, '$.face_width_mm') IN ('real', 'integer')"),
    postgresql_where=text("jsonb_typeof(properties -> 'face_width_mm') = 'number'"),
)
