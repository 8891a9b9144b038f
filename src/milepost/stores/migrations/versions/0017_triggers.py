"""Pipeline triggers, their firings (one per cause), and the scheduler's lease.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_triggers",
        sa.Column("trigger_id", _KEY, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("pipeline_ref", sa.String(length=512), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", name=op.f("pk_pipeline_triggers")),
        sa.UniqueConstraint("name", name=op.f("uq_pipeline_triggers_name")),
    )
    op.create_table(
        "trigger_firings",
        sa.Column("firing_id", sa.String(length=32), nullable=False),
        sa.Column("trigger_id", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["pipeline_triggers.trigger_id"],
            name=op.f("fk_trigger_firings_trigger_id_pipeline_triggers"),
        ),
        sa.PrimaryKeyConstraint("firing_id", name=op.f("pk_trigger_firings")),
        sa.UniqueConstraint(
            "trigger_id", "cause", name=op.f("uq_trigger_firings_trigger_id_cause")
        ),
    )
    with op.batch_alter_table("trigger_firings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trigger_firings_trigger_id_fired_at"), ["trigger_id", "fired_at"]
        )
        batch_op.create_index(batch_op.f("ix_trigger_firings_fired_at"), ["fired_at"])
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("renewed_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_leases")
    with op.batch_alter_table("trigger_firings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trigger_firings_fired_at"))
        batch_op.drop_index(batch_op.f("ix_trigger_firings_trigger_id_fired_at"))
    op.drop_table("trigger_firings")
    op.drop_table("pipeline_triggers")
