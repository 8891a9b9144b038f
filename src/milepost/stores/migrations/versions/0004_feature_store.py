"""Feature store: entities, feature views and versions, retrieval lineage.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("join_keys_json", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_entities")),
    )
    op.create_table(
        "feature_retrievals",
        sa.Column("retrieval_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("refs_json", sa.Text(), nullable=False),
        sa.Column("sources_json", sa.Text(), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("retrieval_id", name=op.f("pk_feature_retrievals")),
    )
    with op.batch_alter_table("feature_retrievals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feature_retrievals_run_id"), ["run_id"], unique=False)

    op.create_table(
        "feature_views",
        sa.Column(
            "view_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("view_id", name=op.f("pk_feature_views")),
        sa.UniqueConstraint("name", name=op.f("uq_feature_views_name")),
    )
    op.create_table(
        "feature_view_versions",
        sa.Column(
            "version_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("view_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("definition_json", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("materialized_until", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("retired_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["view_id"],
            ["feature_views.view_id"],
            name=op.f("fk_feature_view_versions_view_id_feature_views"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_feature_view_versions")),
        sa.UniqueConstraint(
            "view_id", "fingerprint", name=op.f("uq_feature_view_versions_view_id_fingerprint")
        ),
        sa.UniqueConstraint(
            "view_id", "version", name=op.f("uq_feature_view_versions_view_id_version")
        ),
    )


def downgrade() -> None:
    op.drop_table("feature_view_versions")
    op.drop_table("feature_views")
    with op.batch_alter_table("feature_retrievals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_retrievals_run_id"))

    op.drop_table("feature_retrievals")
    op.drop_table("entities")
