"""Model registry, evaluation and promotion: models, versions, aliases, stage history,
promotion requests, gate results, evaluations and roles.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column(
            "model_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("policy_json", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_registered_models")),
        sa.UniqueConstraint("name", name=op.f("uq_registered_models_name")),
    )
    op.create_table(
        "roles",
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("granted_by", sa.String(length=256), nullable=False),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("actor", "role", name=op.f("pk_roles")),
    )
    op.create_table(
        "model_versions",
        sa.Column(
            "version_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("flavor", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=16), server_default="None", nullable=False),
        sa.Column("files_json", sa.Text(), nullable=False),
        sa.Column("signature_json", sa.Text(), nullable=True),
        sa.Column("input_example_json", sa.Text(), nullable=True),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("datasets_json", sa.Text(), nullable=False),
        sa.Column("feature_refs_json", sa.Text(), nullable=False),
        sa.Column("trusted_types_json", sa.Text(), nullable=False),
        sa.Column("onnx_json", sa.Text(), nullable=True),
        sa.Column("env_hash", sa.String(length=64), nullable=True),
        sa.Column("author", sa.String(length=256), nullable=False),
        sa.Column("code_version", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("stage_changed_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_model_versions_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_model_versions_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", "version", name=op.f("uq_model_versions_model_id_version")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_model_versions_one_production",
            ["model_id"],
            unique=True,
            sqlite_where=sa.text("stage = 'Production'"),
            postgresql_where=sa.text("stage = 'Production'"),
        )

    op.create_table(
        "evaluations",
        sa.Column("eval_id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_version_id", sa.BigInteger(), nullable=True),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("slices_json", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.version_id"],
            name=op.f("fk_evaluations_dataset_version_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.version_id"],
            name=op.f("fk_evaluations_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("eval_id", name=op.f("pk_evaluations")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluations_version_id_created_at"),
            ["version_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_model_aliases_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.version_id"],
            name=op.f("fk_model_aliases_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_model_aliases")),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.version_id"],
            name=op.f("fk_model_version_tags_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_model_version_tags")),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("target_stage", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("baseline_version", sa.BigInteger(), nullable=True),
        sa.Column("requested_by", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", sa.String(length=256), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_promotion_requests_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.version_id"],
            name=op.f("fk_promotion_requests_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_promotion_requests")),
    )
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_promotion_requests_model_id_created_at"),
            ["model_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_promotion_requests_status"), ["status"], unique=False)

    op.create_table(
        "stage_history",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=False),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_stage_history_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.version_id"],
            name=op.f("fk_stage_history_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_stage_history")),
    )
    with op.batch_alter_table("stage_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stage_history_model_id_at"), ["model_id", "at"], unique=False
        )

    op.create_table(
        "gate_results",
        sa.Column(
            "result_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("evaluated_by", sa.String(length=256), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["promotion_requests.request_id"],
            name=op.f("fk_gate_results_request_id_promotion_requests"),
        ),
        sa.PrimaryKeyConstraint("result_id", name=op.f("pk_gate_results")),
    )
    with op.batch_alter_table("gate_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gate_results_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gate_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_results_request_id"))

    op.drop_table("gate_results")
    with op.batch_alter_table("stage_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stage_history_model_id_at"))

    op.drop_table("stage_history")
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_requests_status"))
        batch_op.drop_index(batch_op.f("ix_promotion_requests_model_id_created_at"))

    op.drop_table("promotion_requests")
    op.drop_table("model_version_tags")
    op.drop_table("model_aliases")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluations_version_id_created_at"))

    op.drop_table("evaluations")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_model_versions_one_production",
            sqlite_where=sa.text("stage = 'Production'"),
            postgresql_where=sa.text("stage = 'Production'"),
        )

    op.drop_table("model_versions")
    op.drop_table("roles")
    op.drop_table("registered_models")
