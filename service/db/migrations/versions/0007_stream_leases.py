"""tryon feature: stream_leases, the per-principal stream cap shared by every replica.

One row per open stream (when no Redis is configured): a random lease id, the principal
("key:<id>" or "session:<nonce>", never a shopper id) and an expiry in Unix seconds that the
stream renews while open; expired rows are deleted as the app goes.

Revision ID: 0007_stream_leases
Revises: 0006_rejections
Create Date: 2026-12-16
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_stream_leases"
down_revision: str | Sequence[str] | None = "0006_rejections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_leases",
        sa.Column("lease_id", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(96), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_stream_leases")),
    )
    op.create_index(
        op.f("ix_stream_leases_principal"), "stream_leases", ["principal"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_stream_leases_principal"), table_name="stream_leases")
    op.drop_table("stream_leases")
