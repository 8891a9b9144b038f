"""Trusted types: the approver-set list of types model files may hold, for every loader.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_types",
        sa.Column("type_name", sa.String(length=512), nullable=False),
        sa.Column("added_by", sa.String(length=256), nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("type_name", name=op.f("pk_trusted_types")),
    )


def downgrade() -> None:
    op.drop_table("trusted_types")
