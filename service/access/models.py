"""Tables owned by the try-on API: api_keys, catalog_products (uploaded GLBs), rate_counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class ApiKey(Base):
    """A client key; only its sha256 is stored, the raw key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # First characters of the raw key, so people can tell keys apart in listings.
    prefix: Mapped[str] = mapped_column(String(12))
    # Space-separated subset of kiosk analyst admin demo.
    scopes: Mapped[str] = mapped_column(String(128))
    # None = the service default for the key's scopes.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


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


class RateCounter(Base):
    """Requests per key per fixed one-minute window, bumped with an atomic upsert."""

    __tablename__ = "rate_counters"

    bucket: Mapped[str] = mapped_column(String(96), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)
