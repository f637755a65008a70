"""Analytics schema: two indexes on events (0003_analytics) and the daily rollups (0004_rollups).

Declared here so the schema in metadata matches the database (Alembic autogenerate,
create_all in tools). Rollup rows hold no shopper id: retention may delete the raw events
and the aggregates stay; erasing a shopper needs no rollup change.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.touchpoints.models import Event

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

# Key columns that may be absent on the event are stored as "" (NONE_KEY), never NULL: a
# unique key treats NULLs as distinct on SQLite, so the upsert would insert duplicates.
NONE_KEY = ""


class DailyProduct(Base):
    """Per UTC day, sku, variant, channel and store: what sums exactly (no shopper id)."""

    __tablename__ = "analytics_daily_product"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    variant: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    try_ons: Mapped[int] = mapped_column(BigInteger, default=0)
    dwell_events: Mapped[int] = mapped_column(BigInteger, default=0)
    dwell_ms_total: Mapped[int] = mapped_column(BigInteger, default=0)


class DailyShade(Base):
    """Per UTC day, shade, skin-tone band, channel and store: Shade Applied count."""

    __tablename__ = "analytics_daily_shade"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    shade: Mapped[str] = mapped_column(String(64), primary_key=True)
    skin_tone_band: Mapped[str] = mapped_column(String(64), primary_key=True)  # MAX_BAND_CHARS
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    applications: Mapped[int] = mapped_column(BigInteger, default=0)
