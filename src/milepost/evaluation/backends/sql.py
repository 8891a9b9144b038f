"""Stored evaluations."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import NotFound
from milepost.evaluation.fairness import FairnessResult
from milepost.evaluation.models import EvaluationResult
from milepost.stores.audit import append_event
from milepost.stores.schema import (
    dataset_versions,
    datasets,
    evaluations,
    fairness_audits,
    model_versions,
    registered_models,
)

if TYPE_CHECKING:
    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlEvaluationStore", "SqlFairnessStore"]

_DATASET_VERSION = dataset_versions.alias("dv")


def _select() -> sa.Select[Any]:
    """Evaluations with the dataset ref (``name@N``, or NULL for a frame)."""
    dv = _DATASET_VERSION
    return sa.select(
        evaluations, datasets.c.name.label("dataset_name"), dv.c.version.label("dv")
    ).select_from(
        evaluations.outerjoin(dv, dv.c.version_id == evaluations.c.dataset_version_id).outerjoin(
            datasets, datasets.c.dataset_id == dv.c.dataset_id
        )
    )


def _result(row: sa.RowMapping, model_uri: str) -> EvaluationResult:
    ref = None if row["dataset_name"] is None else f"{row['dataset_name']}@{row['dv']}"
    return EvaluationResult(
        eval_id=row["eval_id"],
        model_uri=model_uri,
        dataset_ref=ref,
        task=row["task"],
        target=row["target"],
        num_rows=int(row["num_rows"]),
        metrics=json.loads(row["metrics_json"]),
        slices=json.loads(row["slices_json"]),
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
    )


class SqlEvaluationStore:
    """Evaluations linked to model versions and dataset versions."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def add(self, values: dict[str, Any]) -> None:
        """Store one evaluation."""
        with self.db.write() as conn:
            conn.execute(sa.insert(evaluations).values(**values))

    def for_version(
        self, version_id: int, model_uri: str, *, limit: int = 20
    ) -> list[EvaluationResult]:
        """A model version's evaluations (``model_uri`` names it), newest first."""
        q = (
            _select()
            .where(evaluations.c.version_id == version_id)
            .order_by(evaluations.c.created_at.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return [_result(r, model_uri) for r in conn.execute(q).mappings()]

    def get(self, eval_id: str) -> EvaluationResult:
        """One evaluation."""
        q = (
            _select()
            .add_columns(registered_models.c.name.label("model_name"), model_versions.c.version)
            .join(model_versions, model_versions.c.version_id == evaluations.c.version_id)
            .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
            .where(evaluations.c.eval_id == eval_id)
        )
        with self.db.read() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            raise NotFound(f"Evaluation {eval_id!r} does not exist.")
        return _result(row, f"models:/{row['model_name']}/{row['version']}")


def _select_audits() -> sa.Select[Any]:
    """Fairness audits with the model URI and the dataset ref (NULL for a frame)."""
    dv = _DATASET_VERSION
    return sa.select(
        fairness_audits,
        datasets.c.name.label("dataset_name"),
        dv.c.version.label("dv"),
        registered_models.c.name.label("model_name"),
        model_versions.c.version.label("model_version"),
    ).select_from(
        fairness_audits.join(
            model_versions, model_versions.c.version_id == fairness_audits.c.version_id
        )
        .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
        .outerjoin(dv, dv.c.version_id == fairness_audits.c.dataset_version_id)
        .outerjoin(datasets, datasets.c.dataset_id == dv.c.dataset_id)
    )


def _audit(row: sa.RowMapping) -> FairnessResult:
    ref = None if row["dataset_name"] is None else f"{row['dataset_name']}@{row['dv']}"
    # sensitive_json: {"features": [...], "positive_label": ..., "threshold": ...}
    sensitive = json.loads(row["sensitive_json"])
    groups = json.loads(row["groups_json"])
    return FairnessResult(
        audit_id=row["audit_id"],
        model_uri=f"models:/{row['model_name']}/{row['model_version']}",
        dataset_ref=ref,
        target=row["target"],
        sensitive_features=list(sensitive["features"]),
        summary=json.loads(row["summary_json"]),
        groups=groups,
        num_rows=int(row["num_rows"]),
        min_group_size=int(row["min_group_size"]),
        positive_label=sensitive.get("positive_label"),
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
        unreliable_groups=[f"{g['feature']}={g['group']}" for g in groups if g["unreliable"]],
        threshold=float(sensitive.get("threshold", 0.5)),
    )


class SqlFairnessStore:
    """Fairness audits of model versions, each audited (``fairness.audit``) as it is stored."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def add(
        self,
        result: FairnessResult,
        *,
        version_id: int,
        dataset_version_id: int | None,
        actor: str,
    ) -> None:
        """Store one audit and its audit-trail event in one transaction."""
        sensitive = {
            "features": result.sensitive_features,
            "positive_label": result.positive_label,
            "threshold": result.threshold,
        }
        with self.db.write() as conn:
            conn.execute(
                sa.insert(fairness_audits).values(
                    audit_id=result.audit_id,
                    version_id=version_id,
                    dataset_version_id=dataset_version_id,
                    target=result.target,
                    sensitive_json=json.dumps(sensitive),
                    summary_json=json.dumps(result.summary, allow_nan=False),
                    groups_json=json.dumps(result.groups, allow_nan=False),
                    num_rows=result.num_rows,
                    min_group_size=result.min_group_size,
                    created_by=result.created_by,
                    created_at=result.created_at,
                )
            )
            append_event(
                conn,
                actor=actor,
                action="fairness.audit",
                object_type="model_version",
                object_id=result.model_uri.removeprefix("models:/"),
                after={
                    "audit_id": result.audit_id,
                    "dataset": result.dataset_ref,
                    "target": result.target,
                    **sensitive,
                    "min_group_size": result.min_group_size,
                    "num_rows": result.num_rows,
                    "summary": result.summary,
                    "unreliable_groups": result.unreliable_groups,
                },
            )

    def for_version(self, version_id: int, *, limit: int = 20) -> list[FairnessResult]:
        """A model version's audits, newest first."""
        q = (
            _select_audits()
            .where(fairness_audits.c.version_id == version_id)
            .order_by(fairness_audits.c.created_at.desc(), fairness_audits.c.audit_id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [_audit(r) for r in conn.execute(q).mappings()]

    def get(self, audit_id: str) -> FairnessResult:
        """One audit, by its id or a unique prefix of it (the CLI prints 12 characters).

        Raises:
            NotFound: no audit (or more than one, for a prefix) has that id.
        """
        column = fairness_audits.c.audit_id
        where = column == audit_id if len(audit_id) == 32 else column.like(audit_id + "%")
        with self.db.read() as conn:
            rows = list(conn.execute(_select_audits().where(where).limit(2)).mappings())
        row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise NotFound(
                f"Fairness audit {audit_id!r} does not exist.",
                hint="`milepost fairness list models:/NAME/VERSION` lists a version's audits.",
            )
        return _audit(row)
