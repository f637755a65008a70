"""access feature: session tokens' shared secret, stream tickets, events.key_id.

app_secrets: secrets every replica shares (the session tokens' HMAC key), inserted once
with insert-or-ignore by the app at start-up (unless TRYON_SESSION_SECRET is set).
stream_tickets: short-lived single-use WebSocket tickets, stored as sha256.
events.key_id: the API key that stored each event (kiosk keys read only shoppers they served);
NULL for the events stored before.

Revision ID: 0005_sessions
Revises: 0002_access
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.migrations.coltypes import BigIntPK

revision: str = "0005_sessions"
down_revision: str | Sequence[str] | None = "0002_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_secrets")),
    )
    op.create_table(
        "stream_tickets",
        sa.Column("ticket_hash", sa.String(64), nullable=False),
        sa.Column("key_id", BigIntPK, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scopes", sa.String(128), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        sa.Column("shopper_id", sa.String(128), nullable=True),
        sa.Column("token_id", sa.String(64), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("ticket_hash", name=op.f("pk_stream_tickets")),
    )
    op.create_index(
        op.f("ix_stream_tickets_expires_at"), "stream_tickets", ["expires_at"], unique=False
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("key_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("key_id")
    op.drop_index(op.f("ix_stream_tickets_expires_at"), table_name="stream_tickets")
    op.drop_table("stream_tickets")
    op.drop_table("app_secrets")
