"""offers feature: offer_impressions, offers, coupons.

Revision ID: 0003_offers
Revises: 0001_events
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.migrations.coltypes import BigIntPK, JSONType

revision: str = "0003_offers"
down_revision: str | Sequence[str] | None = "0001_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "offer_impressions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("shopper_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_impressions")),
    )
    op.create_index(
        "ix_offer_impressions_shopper_channel_shown",
        "offer_impressions",
        ["shopper_id", "channel", "shown_at"],
    )
    op.create_table(
        "offers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("impression_id", sa.String(32), nullable=False),
        sa.Column("shopper_id", sa.String(128), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", JSONType, nullable=False),
        sa.Column("coupon_code", sa.String(32), nullable=True),
        sa.Column("feedback", sa.String(16), nullable=True),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.ForeignKeyConstraint(
            ["impression_id"],
            ["offer_impressions.id"],
            ondelete="CASCADE",
            name=op.f("fk_offers_impression_id_offer_impressions"),
        ),
    )
    op.create_index("ix_offers_impression_id", "offers", ["impression_id"])
    op.create_index("ix_offers_shopper_id", "offers", ["shopper_id"])
    op.create_table(
        "coupons",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("shopper_id", sa.String(128), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("discount_percent", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
        sa.UniqueConstraint("shopper_id", "sku", name=op.f("uq_coupons_shopper_id")),
    )
    op.create_index("ix_coupons_shopper_id", "coupons", ["shopper_id"])


def downgrade() -> None:
    op.drop_table("coupons")
    op.drop_table("offers")
    op.drop_index("ix_offer_impressions_shopper_channel_shown", table_name="offer_impressions")
    op.drop_table("offer_impressions")
