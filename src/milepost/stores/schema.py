"""The metadata schema: one SQLAlchemy ``MetaData`` for every capability.

Migrations in ``stores/migrations`` create exactly these tables;
``tests/unit/stores/test_migrations.py`` fails when the two drift apart. Times are
integer milliseconds since the Unix epoch (UTC) so both dialects sort and compare them
the same way.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "alerts",
    "artifacts",
    "audit_events",
    "audit_head",
    "controller_leases",
    "dataset_files",
    "dataset_versions",
    "datasets",
    "deployment_events",
    "endpoints",
    "entities",
    "environments",
    "evaluations",
    "experiments",
    "feature_retrievals",
    "feature_view_versions",
    "feature_views",
    "feedback",
    "gate_results",
    "latest_metrics",
    "metadata",
    "metrics",
    "model_aliases",
    "model_version_tags",
    "model_versions",
    "monitor_results",
    "monitors",
    "online_watermarks",
    "params",
    "pipeline_links",
    "pipeline_runs",
    "pipeline_steps",
    "pipeline_triggers",
    "prediction_segments",
    "promotion_requests",
    "registered_models",
    "roles",
    "run_inputs",
    "run_tags",
    "runs",
    "scheduler_leases",
    "stage_history",
    "trigger_firings",
    "trusted_types",
    "validation_results",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# An auto-incrementing 64-bit key; on SQLite it must be INTEGER to alias the rowid.
BigIntKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active"),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("env_hash", sa.String(64), primary_key=True),
    sa.Column("python_version", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(256), nullable=False),
    sa.Column("packages_hash", sa.String(64), nullable=False),
    sa.Column("packages", sa.Text, nullable=False),  # JSON list of "name==version"
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column(
        "experiment_id",
        sa.BigInteger,
        sa.ForeignKey("experiments.experiment_id"),
        nullable=False,
    ),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("parent_run_id", sa.String(32), nullable=True),
    sa.Column("env_hash", sa.String(64), sa.ForeignKey("environments.env_hash"), nullable=True),
    sa.Column("source", sa.String(1024), nullable=True),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("git_dirty", sa.Boolean, nullable=True),
    sa.Column("git_root", sa.String(1024), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("owner_host", sa.String(256), nullable=True),
    sa.Column("owner_pid", sa.Integer, nullable=True),
    sa.Column("owner_started", sa.Float, nullable=True),
    sa.Column("heartbeat_at", sa.BigInteger, nullable=True),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active"),
    sa.Index(None, "experiment_id", "start_time"),
    sa.Index(None, "status"),
    sa.Index(None, "parent_run_id"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(6000), nullable=False),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Every logged value. No foreign key: the background writer appends in bulk and the
# run row is known to exist (the writer only accepts values for runs it created).
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=True),  # NULL stands for NaN (SQLite has no NaN)
    sa.Index(None, "run_id", "key", "step"),
)

# The latest value per (run, key): what filters and ordering read. ``experiment_id`` is
# copied from the run (runs never move) so one index serves "top runs by metric".
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("experiment_id", sa.BigInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Index(None, "experiment_id", "key", "value"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# Append-only, hash-chained. ``seq`` is assigned as previous + 1 inside the writing
# transaction, never by a sequence, so a deleted event leaves a visible gap.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(32), nullable=False, unique=True),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(512), nullable=False),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index(None, "object_type", "object_id"),
    sa.Index(None, "time"),
)

# One row: the newest event's seq and hash. The database moves it with every inserted
# event and refuses any other change (triggers, revision 0006: stores/audit_guards.py), so
# deleting the newest events shows as a mismatch between the head and the table, and
# events inserted past it as forged.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


# -- data versioning and validation (revision 0002) -------------------------------------

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# Immutable once written. The same content under one name is one version
# (unique content_hash per dataset), so re-registering returns the existing version.
# hash_version: the content hash's algorithm (1: before canonical types, revision 0012;
# 2: canonical types, see data/_hash.py); a hash is only compared with its own version.
dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("version_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.BigInteger, sa.ForeignKey("datasets.dataset_id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("hash_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("schema_json", sa.Text, nullable=False),
    sa.Column("num_rows", sa.BigInteger, nullable=False),
    sa.Column("num_files", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("source_uri", sa.String(2048), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("profile_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("dataset_id", "version"),
    sa.UniqueConstraint("dataset_id", "content_hash"),
    sa.Index(None, "content_hash"),
)

# The snapshot: Parquet blobs in the artifact store, in order.
dataset_files = sa.Table(
    "dataset_files",
    metadata,
    sa.Column(
        "version_id",
        sa.BigInteger,
        sa.ForeignKey("dataset_versions.version_id"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(2048), nullable=True),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column(
        "version_id",
        sa.BigInteger,
        sa.ForeignKey("dataset_versions.version_id"),
        primary_key=True,
    ),
    sa.Column("role", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "version_id"),
)

validation_results = sa.Table(
    "validation_results",
    metadata,
    sa.Column("result_id", sa.String(32), primary_key=True),
    sa.Column(
        "version_id", sa.BigInteger, sa.ForeignKey("dataset_versions.version_id"), nullable=True
    ),
    sa.Column("suite_name", sa.String(256), nullable=False),
    sa.Column("suite_hash", sa.String(64), nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("num_checks", sa.Integer, nullable=False),
    sa.Column("num_failed", sa.Integer, nullable=False),
    sa.Column("result_json", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "version_id", "created_at"),
)


# -- model registry, evaluation and promotion (revision 0003) ----------------------------

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("model_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("policy_json", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

STAGES = ("None", "Staging", "Production", "Archived")

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("version_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id", sa.BigInteger, sa.ForeignKey("registered_models.model_id"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=True),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False, server_default="None"),
    sa.Column("files_json", sa.Text, nullable=False),
    sa.Column("signature_json", sa.Text, nullable=True),
    sa.Column("input_example_json", sa.Text, nullable=True),
    sa.Column("metrics_json", sa.Text, nullable=False),
    sa.Column("datasets_json", sa.Text, nullable=False),
    sa.Column("feature_refs_json", sa.Text, nullable=False),
    sa.Column("trusted_types_json", sa.Text, nullable=False),
    sa.Column("onnx_json", sa.Text, nullable=True),
    sa.Column("env_hash", sa.String(64), nullable=True),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("code_version", sa.String(64), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("stage_changed_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("model_id", "version"),
    # At most one Production version per model, enforced by the database itself.
    sa.Index(
        "uq_model_versions_one_production",
        "model_id",
        unique=True,
        sqlite_where=sa.text("stage = 'Production'"),
        postgresql_where=sa.text("stage = 'Production'"),
    ),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column(
        "version_id", sa.BigInteger, sa.ForeignKey("model_versions.version_id"), primary_key=True
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column(
        "model_id", sa.BigInteger, sa.ForeignKey("registered_models.model_id"), primary_key=True
    ),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column(
        "version_id", sa.BigInteger, sa.ForeignKey("model_versions.version_id"), nullable=False
    ),
    sa.Column("updated_by", sa.String(256), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Every stage change, for "which version was in Production at time T".
stage_history = sa.Table(
    "stage_history",
    metadata,
    sa.Column("event_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id", sa.BigInteger, sa.ForeignKey("registered_models.model_id"), nullable=False
    ),
    sa.Column(
        "version_id", sa.BigInteger, sa.ForeignKey("model_versions.version_id"), nullable=False
    ),
    sa.Column("from_stage", sa.String(16), nullable=False),
    sa.Column("to_stage", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("request_id", sa.String(32), nullable=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index(None, "model_id", "at"),
)

promotion_requests = sa.Table(
    "promotion_requests",
    metadata,
    sa.Column("request_id", sa.String(32), primary_key=True),
    sa.Column(
        "model_id", sa.BigInteger, sa.ForeignKey("registered_models.model_id"), nullable=False
    ),
    sa.Column(
        "version_id", sa.BigInteger, sa.ForeignKey("model_versions.version_id"), nullable=False
    ),
    sa.Column("target_stage", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("baseline_version", sa.BigInteger, nullable=True),
    sa.Column("requested_by", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("decided_by", sa.String(256), nullable=True),
    sa.Column("decided_at", sa.BigInteger, nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
    # the endpoint that tracks the target stage and rolls the version out (None: the
    # stage changed, or changes, without one)
    sa.Column("endpoint", sa.String(128), nullable=True),
    sa.Index(None, "status"),
    sa.Index(None, "model_id", "created_at"),
)

gate_results = sa.Table(
    "gate_results",
    metadata,
    sa.Column("result_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column(
        "request_id", sa.String(32), sa.ForeignKey("promotion_requests.request_id"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("details_json", sa.Text, nullable=False),
    sa.Column("evaluated_by", sa.String(256), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index(None, "request_id"),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("eval_id", sa.String(32), primary_key=True),
    sa.Column(
        "version_id", sa.BigInteger, sa.ForeignKey("model_versions.version_id"), nullable=False
    ),
    sa.Column(
        "dataset_version_id",
        sa.BigInteger,
        sa.ForeignKey("dataset_versions.version_id"),
        nullable=True,
    ),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("num_rows", sa.BigInteger, nullable=False),
    sa.Column("metrics_json", sa.Text, nullable=False),
    sa.Column("slices_json", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "version_id", "created_at"),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("actor", sa.String(256), primary_key=True),
    sa.Column("role", sa.String(64), primary_key=True),
    sa.Column("granted_by", sa.String(256), nullable=False),
    sa.Column("granted_at", sa.BigInteger, nullable=False),
)


# -- feature store (revision 0004) ----------------------------------------------------

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("join_keys_json", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

feature_views = sa.Table(
    "feature_views",
    metadata,
    sa.Column("view_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# One row per definition that ever existed; a changed definition is a new version.
feature_view_versions = sa.Table(
    "feature_view_versions",
    metadata,
    sa.Column("version_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("view_id", sa.BigInteger, sa.ForeignKey("feature_views.view_id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("definition_json", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("materialized_until", sa.BigInteger, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("retired_at", sa.BigInteger, nullable=True),
    # where the definition came from at apply time (file, line, function, git commit); 0011
    sa.Column("origin_json", sa.Text, nullable=True),
    sa.UniqueConstraint("view_id", "version"),
    sa.UniqueConstraint("view_id", "fingerprint"),
)

# Lineage of training sets: which feature versions and source snapshots a retrieval read.
feature_retrievals = sa.Table(
    "feature_retrievals",
    metadata,
    sa.Column("retrieval_id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("refs_json", sa.Text, nullable=False),
    sa.Column("sources_json", sa.Text, nullable=False),
    sa.Column("num_rows", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "run_id"),
)

# What each online store holds of each view version (revision 0009): the event-time
# intervals materialized into it, ``[[start, end], ...]`` in ms with a null start for "from
# the beginning of the data", recorded against the store's own id (kept in the store
# itself) and the store's revision after the write. A store that lost its data has no id
# or another one, so nothing recorded here applies to it.
online_watermarks = sa.Table(
    "online_watermarks",
    metadata,
    sa.Column(
        "version_id",
        sa.BigInteger,
        sa.ForeignKey("feature_view_versions.version_id"),
        primary_key=True,
    ),
    sa.Column("store_id", sa.String(64), primary_key=True),
    sa.Column("store_uri", sa.String(2048), nullable=False),
    sa.Column("intervals_json", sa.Text, nullable=False),
    sa.Column("materialized_until", sa.BigInteger, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index(None, "store_id", "revision"),
)


# -- serving (revision 0005) ------------------------------------------------------------

# An endpoint's whole routing state is one JSON document; ``revision`` grows with every
# change, and replicas poll it (a cheap indexed read) to pick changes up within a second.
endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("endpoint_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # A stage-bound endpoint ("tracks Production of churn"): the registered model and the
    # stage it serves; both None for an endpoint pinned to explicit versions. A model's
    # stage is tracked by at most one endpoint (the index), so that the stage and the
    # endpoint's primary can change together in one transaction.
    sa.Column("track_model", sa.String(256), nullable=True),
    sa.Column("track_stage", sa.String(16), nullable=True),
    sa.Index(None, "track_model", "track_stage", unique=True),
)

deployment_events = sa.Table(
    "deployment_events",
    metadata,
    sa.Column("event_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.BigInteger, sa.ForeignKey("endpoints.endpoint_id"), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("details_json", sa.Text, nullable=True),
    sa.Index(None, "endpoint_id", "at"),
)

# Prediction logs are Parquet segments written by each replica; this table lists them.
prediction_segments = sa.Table(
    "prediction_segments",
    metadata,
    sa.Column("segment_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("path", sa.String(2048), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("first_at", sa.BigInteger, nullable=False),
    sa.Column("last_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "endpoint", "last_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("value_json", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index(None, "endpoint", "at"),
)

# Who runs an endpoint's rollout controller (one supervisor at a time, across hosts).
controller_leases = sa.Table(
    "controller_leases",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(256), nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)

# -- trusted types (revision 0008) -----------------------------------------------------

# Types every loader trusts in model files beyond the built-in allow-list; only an
# approver or admin adds or removes them, each change audited in the same transaction.
trusted_types = sa.Table(
    "trusted_types",
    metadata,
    sa.Column("type_name", sa.String(512), primary_key=True),
    sa.Column("added_by", sa.String(256), nullable=False),
    sa.Column("added_at", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# -- monitors (revision 0015) ------------------------------------------------------------

# A monitor: what to compute (``checks_json``: a list of check kinds) on an endpoint's
# prediction log (optionally only one model version's rows), over a window, on a schedule.
# ``next_run_at`` is the next schedule slot; a scheduler claims a slot by moving it forward
# with a compare-and-set, so a slot runs once however many schedulers watch.
monitors = sa.Table(
    "monitors",
    metadata,
    sa.Column("monitor_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("endpoint", sa.String(128), nullable=True),
    sa.Column("model", sa.String(256), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("checks_json", sa.Text, nullable=False),
    sa.Column("window_spec", sa.String(64), nullable=False),
    sa.Column("schedule", sa.String(128), nullable=True),
    sa.Column("thresholds_json", sa.Text, nullable=False),
    sa.Column("webhook", sa.String(2048), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("next_run_at", sa.BigInteger, nullable=True),
    sa.Column("last_run_at", sa.BigInteger, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index(None, "enabled", "next_run_at"),
)

# One row per measured value of a monitor run: a time series per (monitor, metric, feature).
monitor_results = sa.Table(
    "monitor_results",
    metadata,
    sa.Column("result_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("monitor_id", sa.BigInteger, sa.ForeignKey("monitors.monitor_id"), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("run_at", sa.BigInteger, nullable=False),
    sa.Column("window_start", sa.BigInteger, nullable=True),
    sa.Column("window_end", sa.BigInteger, nullable=False),
    sa.Column("check_kind", sa.String(32), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("feature", sa.String(256), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("breached", sa.Boolean, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("details_json", sa.Text, nullable=True),
    sa.Index(None, "monitor_id", "run_at"),
    sa.Index(None, "monitor_id", "metric", "run_at"),
)

# A crossed threshold: stored with the run's results, then delivered (log line, webhook).
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("monitor_id", sa.BigInteger, sa.ForeignKey("monitors.monitor_id"), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("raised_at", sa.BigInteger, nullable=False),
    sa.Column("check_kind", sa.String(32), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("feature", sa.String(256), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    # None: no webhook configured; True: the URL answered 2xx; False: see delivery_error.
    sa.Column("delivered", sa.Boolean, nullable=True),
    sa.Column("delivery_error", sa.Text, nullable=True),
    sa.Column("acknowledged_at", sa.BigInteger, nullable=True),
    sa.Column("acknowledged_by", sa.String(256), nullable=True),
    sa.Index(None, "monitor_id", "raised_at"),
    sa.Index(None, "raised_at"),
)

# -- pipelines (revision 0016) -----------------------------------------------------------

# One row per pipeline run. ``host``/``pid``/``pid_started`` name the process that runs
# it and ``heartbeat_at`` is moved while it does, so a run whose process died can be told
# from a long one (``PipelineService.reap_stale``). ``trigger`` is the firing that launched
# it (no foreign key: the triggers' tables come later and a firing may be pruned).
pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.String(256), nullable=False),
    sa.Column("ref", sa.String(1024), nullable=False),
    sa.Column("params_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("runner", sa.String(16), nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("ended_at", sa.BigInteger, nullable=True),
    sa.Column("heartbeat_at", sa.BigInteger, nullable=True),
    sa.Column("host", sa.String(256), nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("pid_started", sa.Float, nullable=True),
    sa.Column("code_version_json", sa.Text, nullable=True),
    sa.Column("resumed_from", sa.String(32), nullable=True),
    sa.Column("trigger", sa.String(64), nullable=True),
    sa.Column("failed_step", sa.String(256), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Index(None, "pipeline", "started_at"),
    sa.Index(None, "status"),
    sa.Index(None, "trigger"),
)

# One row per step of a run, written when the DAG is planned and updated per event.
# ``position`` is the step's place in the plan's topological order. A cached step's
# outputs are found by ``cache_key`` among succeeded (or cached) steps of any run.
pipeline_steps = sa.Table(
    "pipeline_steps",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("pipeline_runs.run_id"), primary_key=True),
    sa.Column("step", sa.String(256), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("func", sa.String(1024), nullable=False),
    sa.Column("upstream_json", sa.Text, nullable=False),
    sa.Column("options_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=True),
    sa.Column("ended_at", sa.BigInteger, nullable=True),
    sa.Column("cache_key", sa.String(64), nullable=True),
    sa.Column("cached_from", sa.String(32), nullable=True),
    sa.Column("inputs_json", sa.Text, nullable=True),
    sa.Column("outputs_json", sa.Text, nullable=True),
    sa.Column("logs_key", sa.String(128), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("traceback", sa.Text, nullable=True),
    sa.Index(None, "cache_key", "status"),
)

# Lineage edges from a step to what it read or made (a tracking run, a dataset version,
# a model version, ...). "Which pipeline run made model churn/4" is one indexed query.
pipeline_links = sa.Table(
    "pipeline_links",
    metadata,
    sa.Column("link_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("pipeline_runs.run_id"), nullable=False),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("ref", sa.String(512), nullable=False),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Index(None, "kind", "ref"),
    sa.Index(None, "run_id", "step"),
)

# -- pipeline triggers and the scheduler (revision 0017) ---------------------------------

# A trigger launches a pipeline (``pipeline_ref`` with ``params_json``, the text a
# ``--param`` gives) when its cause comes: ``kind`` schedule (``spec_json``: the cron),
# drift or performance (the monitor), data_volume (a dataset or feature view and
# min_rows). ``state_json`` is its cursor (last slot, highest alert id seen, row
# baseline), moved by compare-and-set in the transaction that inserts the firing.
pipeline_triggers = sa.Table(
    "pipeline_triggers",
    metadata,
    sa.Column("trigger_id", BigIntKey, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("pipeline_ref", sa.String(512), nullable=False),
    sa.Column("params_json", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("state_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# One row per firing. UNIQUE(trigger_id, cause): the database, not the code, guarantees
# that a cause (``slot:...``, ``alert:17``, ``rows:customers@4``, ``manual:<uuid>``)
# fires once, whatever races. ``pipeline_run_id`` is chosen before the launch.
trigger_firings = sa.Table(
    "trigger_firings",
    metadata,
    sa.Column("firing_id", sa.String(32), primary_key=True),
    sa.Column(
        "trigger_id",
        sa.BigInteger,
        sa.ForeignKey("pipeline_triggers.trigger_id"),
        nullable=False,
    ),
    sa.Column("cause", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("fired_at", sa.BigInteger, nullable=False),
    sa.Column("pipeline_run_id", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.UniqueConstraint("trigger_id", "cause"),
    sa.Index(None, "trigger_id", "fired_at"),
    sa.Index(None, "fired_at"),
)

# Who runs the periodic work: one row per lease name ("scheduler"), taken and renewed by
# compare-and-set (UPDATE ... WHERE holder = me OR expires_at < now; INSERT when missing).
scheduler_leases = sa.Table(
    "scheduler_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(256), nullable=False),
    sa.Column("acquired_at", sa.BigInteger, nullable=False),
    sa.Column("renewed_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)

# -- governance: fairness audits and model cards (revision 0018) -------------------------

# One fairness audit of a model version on some data: per sensitive feature the summary
# (demographic parity and equalized odds, difference and ratio) and per group the counts
# and rates. A ``fairness`` gate's result names the audit it ran (``details.audit_id``).
fairness_audits = sa.Table(
    "fairness_audits",
    metadata,
    sa.Column("audit_id", sa.String(32), primary_key=True),
    sa.Column(
        "version_id", sa.BigInteger, sa.ForeignKey("model_versions.version_id"), nullable=False
    ),
    sa.Column(
        "dataset_version_id",
        sa.BigInteger,
        sa.ForeignKey("dataset_versions.version_id"),
        nullable=True,
    ),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("sensitive_json", sa.Text, nullable=False),
    sa.Column("summary_json", sa.Text, nullable=False),
    sa.Column("groups_json", sa.Text, nullable=False),
    sa.Column("num_rows", sa.BigInteger, nullable=False),
    sa.Column("min_group_size", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "version_id", "created_at"),
)

# The sections of a model card people write (intended use, limitations, ...): per model
# (``version`` 0, every version) or per version (overrides the model's text). Each change
# is audited (``model_card.update``) in the same transaction.
model_card_fields = sa.Table(
    "model_card_fields",
    metadata,
    sa.Column(
        "model_id", sa.BigInteger, sa.ForeignKey("registered_models.model_id"), primary_key=True
    ),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)


# -- platform server (revision 0019) --------------------------------------------------

# API tokens of `milepost server`, the model server and the feature server. Only a hash of
# the secret is kept (SHA-256: the secret is 256 random bits, so no slow hash is needed);
# ``user`` is the identity recorded as the actor of everything done with the token;
# ``role`` is the most it may do (viewer < member < approver < admin); ``project`` scopes
# it to one project's experiments (NULL: every project). Created and revoked only through
# TokenService, each audited (``token.create``/``token.revoke``) in the same transaction.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("project", sa.String(256), nullable=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_by", sa.String(256), nullable=True),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.CheckConstraint("role IN ('viewer', 'member', 'approver', 'admin')", name="api_token_role"),
    sa.Index(None, "user"),
)
