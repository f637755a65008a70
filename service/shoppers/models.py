"""The erasure log: proof that an erasure or retention purge ran."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class ErasureLog(Base):
    """Proof that an erasure ran; keeps a hash of the id, never the id itself."""

    __tablename__ = "erasure_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # "shopper" | "retention"
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
