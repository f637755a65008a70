"""Access tables: API keys (hashed) and rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, BigIntPK, UTCDateTime, utcnow


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


class RateCounter(Base):
    """Requests per key per fixed one-minute window, bumped with an atomic upsert."""

    __tablename__ = "rate_counters"

    bucket: Mapped[str] = mapped_column(String(96), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AppSecret(Base):
    """A secret every replica shares (the session tokens' HMAC key), inserted once."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class StreamTicket(Base):
    """A short-lived, single-use WebSocket ticket (only its sha256 is stored).

    Holds the principal that asked for it, so the stream authenticates as that caller.
    """

    __tablename__ = "stream_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(BigIntPK)
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(128))
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer)
    # A session token's shopper and token id; None for an API key's ticket.
    shopper_id: Mapped[str | None] = mapped_column(String(128))
    token_id: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
