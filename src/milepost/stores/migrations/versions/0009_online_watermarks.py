"""Online watermarks per online store: what each store holds of each view version.

Revision ID: 0009
Revises: 0008

The old ``feature_view_versions.materialized_until`` stays (the latest end materialized
into any store); nothing is copied from it, because it does not say which store it was
for: the first incremental materialization after the upgrade refills each view's TTL
window once, then continues from the new per-store watermark.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_watermarks",
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("store_uri", sa.String(length=2048), nullable=False),
        sa.Column("intervals_json", sa.Text(), nullable=False),
        sa.Column("materialized_until", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["feature_view_versions.version_id"],
            name=op.f("fk_online_watermarks_version_id_feature_view_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", "store_id", name=op.f("pk_online_watermarks")),
    )
    with op.batch_alter_table("online_watermarks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_online_watermarks_store_id_revision"),
            ["store_id", "revision"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("online_watermarks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_online_watermarks_store_id_revision"))

    op.drop_table("online_watermarks")
