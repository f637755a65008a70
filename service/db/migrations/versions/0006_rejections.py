"""touchpoints feature: event_rejections, the recent rejected touchpoints admins list.

No shopper ids and no property values: time, source, event name, message id, reason code and
message. The app keeps only the newest rows (TRYON_REJECTIONS_KEEP).

Revision ID: 0006_rejections
Revises: 0005_sessions
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.migrations.coltypes import BigIntPK

revision: str = "0006_rejections"
down_revision: str | Sequence[str] | None = "0005_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_rejections",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("event", sa.String(64), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("message", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_rejections")),
    )
    op.create_index(op.f("ix_event_rejections_at"), "event_rejections", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_event_rejections_at"), table_name="event_rejections")
    op.drop_table("event_rejections")
