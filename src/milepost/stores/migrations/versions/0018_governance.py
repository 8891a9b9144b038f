"""Governance: fairness audits of model versions and the written sections of model cards.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fairness_audits",
        sa.Column("audit_id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_version_id", sa.BigInteger(), nullable=True),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("sensitive_json", sa.Text(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("groups_json", sa.Text(), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("min_group_size", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.version_id"],
            name=op.f("fk_fairness_audits_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.version_id"],
            name=op.f("fk_fairness_audits_dataset_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_fairness_audits")),
    )
    with op.batch_alter_table("fairness_audits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fairness_audits_version_id_created_at"), ["version_id", "created_at"]
        )
    op.create_table(
        "model_card_fields",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_model_card_fields_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("model_id", "version", "field", name=op.f("pk_model_card_fields")),
    )


def downgrade() -> None:
    op.drop_table("model_card_fields")
    with op.batch_alter_table("fairness_audits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fairness_audits_version_id_created_at"))
    op.drop_table("fairness_audits")
