"""Stored evaluations."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import NotFound
from milepost.evaluation.models import EvaluationResult
from milepost.stores.schema import (
    dataset_versions,
    datasets,
    evaluations,
    model_versions,
    registered_models,
)

if TYPE_CHECKING:
    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlEvaluationStore"]

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
