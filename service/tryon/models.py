"""Try-on tables: products uploaded through POST /v1/products (metadata + validated GLB)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, String
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
