"""Pipelines: runs, their steps, and the lineage links steps record.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("ref", sa.String(length=1024), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("runner", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("host", sa.String(length=256), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("pid_started", sa.Float(), nullable=True),
        sa.Column("code_version_json", sa.Text(), nullable=True),
        sa.Column("resumed_from", sa.String(length=32), nullable=True),
        sa.Column("trigger", sa.String(length=64), nullable=True),
        sa.Column("failed_step", sa.String(length=256), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_pipeline_runs")),
    )
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_runs_pipeline_started_at"), ["pipeline", "started_at"]
        )
        batch_op.create_index(batch_op.f("ix_pipeline_runs_status"), ["status"])
        batch_op.create_index(batch_op.f("ix_pipeline_runs_trigger"), ["trigger"])

    op.create_table(
        "pipeline_steps",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("func", sa.String(length=1024), nullable=False),
        sa.Column("upstream_json", sa.Text(), nullable=False),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("cache_key", sa.String(length=64), nullable=True),
        sa.Column("cached_from", sa.String(length=32), nullable=True),
        sa.Column("inputs_json", sa.Text(), nullable=True),
        sa.Column("outputs_json", sa.Text(), nullable=True),
        sa.Column("logs_key", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.run_id"],
            name=op.f("fk_pipeline_steps_run_id_pipeline_runs"),
        ),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_pipeline_steps")),
    )
    with op.batch_alter_table("pipeline_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_steps_cache_key_status"), ["cache_key", "status"]
        )

    op.create_table(
        "pipeline_links",
        sa.Column("link_id", _KEY, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.run_id"],
            name=op.f("fk_pipeline_links_run_id_pipeline_runs"),
        ),
        sa.PrimaryKeyConstraint("link_id", name=op.f("pk_pipeline_links")),
    )
    with op.batch_alter_table("pipeline_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipeline_links_kind_ref"), ["kind", "ref"])
        batch_op.create_index(batch_op.f("ix_pipeline_links_run_id_step"), ["run_id", "step"])


def downgrade() -> None:
    op.drop_table("pipeline_links")
    op.drop_table("pipeline_steps")
    op.drop_table("pipeline_runs")
