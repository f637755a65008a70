"""Identity tables: links between shopper ids and each id's canonical group id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, BigIntPK, UTCDateTime, utcnow


class ShopperAlias(Base):
    """An undirected link between two shopper ids (hand-off claim, Segment identify)."""

    __tablename__ = "shopper_aliases"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    shopper_id: Mapped[str] = mapped_column(String(128), index=True)
    alias_id: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("shopper_id", "alias_id"),)


class ShopperGroup(Base):
    """Canonical id (the smallest id) of each linked shopper id's group (shopper_aliases).

    Identity data, not an aggregate: kept by identity.link_shoppers, erased with the shopper.
    A real indexed table, so the funnel and unique counts join it with a hash join.
    """

    __tablename__ = "analytics_shopper_groups"

    shopper_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    canonical_id: Mapped[str] = mapped_column(String(128))
