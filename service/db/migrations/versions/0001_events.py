"""events feature: events, handoff_tokens, shopper_aliases, erasure_log.

Revision ID: 0001_events
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.migrations.coltypes import BigIntPK, JSONType

revision: str = "0001_events"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("anonymous_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("shopper_id", sa.String(128), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=True),
        sa.Column("kiosk_id", sa.String(64), nullable=True),
        sa.Column("sku", sa.String(64), nullable=True),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("shade", sa.String(64), nullable=True),
        sa.Column("dwell_ms", sa.Integer(), nullable=True),
        sa.Column("price", sa.Numeric(12, 2), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("properties", JSONType, nullable=False),
        sa.Column("context", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("message_id", name=op.f("uq_events_message_id")),
    )
    op.create_index(op.f("ix_events_anonymous_id"), "events", ["anonymous_id"])
    op.create_index(op.f("ix_events_user_id"), "events", ["user_id"])
    op.create_index(op.f("ix_events_channel"), "events", ["channel"])
    op.create_index(op.f("ix_events_timestamp"), "events", ["timestamp"])
    op.create_index("ix_events_event_timestamp", "events", ["event", "timestamp"])
    op.create_index("ix_events_sku_event", "events", ["sku", "event"])
    op.create_index("ix_events_shopper_id_timestamp", "events", ["shopper_id", "timestamp"])

    op.create_table(
        "handoff_tokens",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("shopper_id", sa.String(128), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=True),
        sa.Column("kiosk_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_handoff_tokens_token_hash")),
    )
    op.create_index(op.f("ix_handoff_tokens_shopper_id"), "handoff_tokens", ["shopper_id"])
    op.create_index(op.f("ix_handoff_tokens_expires_at"), "handoff_tokens", ["expires_at"])
    op.create_index(op.f("ix_handoff_tokens_claimed_by"), "handoff_tokens", ["claimed_by"])

    op.create_table(
        "shopper_aliases",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("shopper_id", sa.String(128), nullable=False),
        sa.Column("alias_id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopper_aliases")),
        sa.UniqueConstraint("shopper_id", "alias_id", name=op.f("uq_shopper_aliases_shopper_id")),
    )
    op.create_index(op.f("ix_shopper_aliases_shopper_id"), "shopper_aliases", ["shopper_id"])
    op.create_index(op.f("ix_shopper_aliases_alias_id"), "shopper_aliases", ["alias_id"])

    op.create_table(
        "erasure_log",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_log")),
    )
    op.create_index(op.f("ix_erasure_log_subject_hash"), "erasure_log", ["subject_hash"])


def downgrade() -> None:
    op.drop_table("erasure_log")
    op.drop_table("shopper_aliases")
    op.drop_table("handoff_tokens")
    op.drop_table("events")
