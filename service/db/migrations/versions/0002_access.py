"""service-api feature: api_keys, catalog_products, rate_counters.

Revision ID: 0002_access
Revises: 0001_events
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.migrations.coltypes import BigIntPK, JSONType

revision: str = "0002_access"
down_revision: str | Sequence[str] | None = "0001_events"
branch_labels: str | Sequence[str] | None = ("access",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("scopes", sa.String(128), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "catalog_products",
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("style", sa.String(32), nullable=False),
        sa.Column("meta", JSONType, nullable=False),
        sa.Column("glb", sa.LargeBinary(), nullable=False),
        sa.Column("glb_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_catalog_products")),
    )
    op.create_index(op.f("ix_catalog_products_style"), "catalog_products", ["style"], unique=False)
    op.create_table(
        "rate_counters",
        sa.Column("bucket", sa.String(96), nullable=False),
        sa.Column("window_start", BigIntPK, nullable=False, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_rate_counters")),
    )


def downgrade() -> None:
    op.drop_table("rate_counters")
    op.drop_index(op.f("ix_catalog_products_style"), table_name="catalog_products")
    op.drop_table("catalog_products")
    op.drop_table("api_keys")
