"""Stage-bound endpoints: an endpoint may track a stage of a model (Production of churn).

Revision ID: 0014
Revises: 0013

Existing endpoints keep serving the versions they name (``track_model`` and
``track_stage`` stay NULL: pinned). A promotion request records the endpoint that rolls
its version out (NULL for requests that changed the stage directly).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("track_model", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("track_stage", sa.String(length=16), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_endpoints_track_model_track_stage"),
            ["track_model", "track_stage"],
            unique=True,
        )
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("endpoint", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.drop_column("endpoint")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoints_track_model_track_stage"))
        batch_op.drop_column("track_stage")
        batch_op.drop_column("track_model")
