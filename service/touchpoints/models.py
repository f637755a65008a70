"""The events table: one row per stored touchpoint."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class Event(Base):
    """One touchpoint (Segment-style track event), immutable once stored."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # Client-made id; the UNIQUE constraint is what makes ingest idempotent.
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    anonymous_id: Mapped[str] = mapped_column(String(128), index=True)
    user_id: Mapped[str | None] = mapped_column(String(128), index=True)
    # user_id when set, else anonymous_id: the one id offers and erasure key on.
    shopper_id: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32), index=True)
    store_id: Mapped[str | None] = mapped_column(String(64))
    kiosk_id: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(String(64))
    variant: Mapped[str | None] = mapped_column(String(64))
    shade: Mapped[str | None] = mapped_column(String(64))
    dwell_ms: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Where it came in: "api" (POST /v1/events), "segment", "stream", "offers", ...
    source: Mapped[str] = mapped_column(String(32), default="api")
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The API key that stored it (a session token: the key that minted the session); set by
    # the server from the caller, never from the event. Kiosk keys read only shoppers whose
    # events they stored (service.touchpoints.ownership). None: internal or older events.
    key_id: Mapped[int | None] = mapped_column(BigInteger)

    # The composite indexes cover lookups on their leading column too (event, sku, shopper_id),
    # so no single-column index is kept for those: fewer indexes, faster ingest.
    __table_args__ = (
        Index("ix_events_event_timestamp", "event", "timestamp"),
        Index("ix_events_sku_event", "sku", "event"),
        Index("ix_events_shopper_id_timestamp", "shopper_id", "timestamp"),
    )


class EventRejection(Base):
    """One rejected touchpoint, for GET /v1/admin/rejections (a Segment-debugger-like view).

    Holds no shopper id and no property values: when, where from, the event name, the
    message id, the reason code and message. Capped to the newest `rejections_keep` rows.
    """

    __tablename__ = "event_rejections"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(300))
