"""Try-on tables: uploaded products (metadata + validated GLB) and the streams' shared leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Double, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, JSONType, UTCDateTime, utcnow


class CatalogProduct(Base):
    """A glasses product uploaded through POST /v1/products: metadata + the validated GLB.

    Stored in the database (not on local disk) so every replica serves it.
    """

    __tablename__ = "catalog_products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="glasses")
    name: Mapped[str] = mapped_column(String(128))
    style: Mapped[str] = mapped_column(String(32), index=True)
    # GlassesProduct.to_dict() shape: variants, price, sizes, licence ...
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    glb: Mapped[bytes] = mapped_column(LargeBinary)
    glb_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StreamLease(Base):
    """One open stream's hold on its key's or session token's stream cap (no Redis configured).

    Shared by every replica, so max_streams_per_principal holds across the fleet; the stream
    renews expires_at while it is open, and a crashed replica's rows simply expire. The
    principal is Principal.subject ("key:<id>" or "session:<nonce>"), never a shopper id.
    """

    __tablename__ = "stream_leases"

    lease_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal: Mapped[str] = mapped_column(String(96), index=True)
    # Unix seconds: the same clock and scale as the Redis store's scores.
    expires_at: Mapped[float] = mapped_column(Double)
