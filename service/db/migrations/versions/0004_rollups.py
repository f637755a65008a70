"""analytics feature: daily rollups and canonical ids of linked shoppers.

analytics_daily_product / analytics_daily_shade: kept up to date by ingest() in the
inserting transaction; back-filled here from the events already stored. Rows hold no
shopper id, so retention and erasure leave them alone.
analytics_shopper_groups: each linked id's canonical id (identity data: erased with the
shopper); kept by identity.link_shoppers; back-filled from shopper_aliases.

Revision ID: 0004_rollups
Revises: 0003_analytics
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_rollups"
down_revision: str | Sequence[str] | None = "0003_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(*extra: sa.Column) -> list[sa.Column]:
    return [sa.Column("day", sa.Date(), nullable=False), *extra]


def upgrade() -> None:
    op.create_table(
        "analytics_daily_product",
        *_key(
            sa.Column("sku", sa.String(64), nullable=False),
            sa.Column("variant", sa.String(64), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("store_id", sa.String(64), nullable=False),
        ),
        sa.Column("try_ons", sa.BigInteger(), nullable=False),
        sa.Column("dwell_events", sa.BigInteger(), nullable=False),
        sa.Column("dwell_ms_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "sku", "variant", "channel", "store_id", name=op.f("pk_analytics_daily_product")
        ),
    )
    op.create_table(
        "analytics_daily_shade",
        *_key(
            sa.Column("shade", sa.String(64), nullable=False),
            sa.Column("skin_tone_band", sa.String(64), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("store_id", sa.String(64), nullable=False),
        ),
        sa.Column("applications", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "shade",
            "skin_tone_band",
            "channel",
            "store_id",
            name=op.f("pk_analytics_daily_shade"),
        ),
    )
    op.create_table(
        "analytics_shopper_groups",
        sa.Column("shopper_id", sa.String(128), nullable=False),
        sa.Column("canonical_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("shopper_id", name=op.f("pk_analytics_shopper_groups")),
    )
    # No back-fill here: a migration imports no application code. The app back-fills empty
    # rollups and groups from stored events and links at start-up (service.wiring.backfill).


def downgrade() -> None:
    op.drop_table("analytics_shopper_groups")
    op.drop_table("analytics_daily_shade")
    op.drop_table("analytics_daily_product")
