"""``evaluate``: score a model version on data, overall and per slice, and store it.

The result is linked to the model version and, when the data is a registered dataset
version, to that version too, so "how did v3 do on customers@2" is a query.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from milepost import _validate as check
from milepost.data.models import DatasetVersion
from milepost.errors import InvalidInput
from milepost.evaluation.backends.sql import SqlEvaluationStore
from milepost.evaluation.metrics import (
    Task,
    classification_metrics,
    infer_task,
    regression_metrics,
)
from milepost.evaluation.models import EvaluationResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from milepost.config import Settings
    from milepost.data.service import DataService
    from milepost.models.models import ModelVersion
    from milepost.models.service import LoadedModel, ModelService
    from milepost.stores.metadata import MetadataStore

__all__ = ["EvaluationResult", "EvaluationService"]

_MAX_SLICE_VALUES = 20


class EvaluationService:
    """Scores models with the same metrics everywhere (CLI, gates, server)."""

    def __init__(
        self, db: MetadataStore, settings: Settings, *, models: ModelService, data: DataService
    ) -> None:
        self.store = SqlEvaluationStore(db)
        self.models = models
        self.data = data
        self.actor = settings.actor()

    def _frame(self, data: Any) -> tuple[pd.DataFrame, DatasetVersion | None]:
        if isinstance(data, str):
            data = self.data.get(data)
        if isinstance(data, DatasetVersion):
            return data.to_pandas(), data
        if isinstance(data, pd.DataFrame):
            return data, None
        if hasattr(data, "to_pandas"):
            return data.to_pandas(), None
        raise InvalidInput(
            f"Cannot evaluate on a {type(data).__name__}.",
            hint="Pass a dataset reference ('name@3'), a DatasetVersion or a DataFrame.",
        )

    def evaluate(
        self,
        model: str | ModelVersion | LoadedModel,
        data: Any,
        *,
        target: str,
        task: Task | None = None,
        slices: Sequence[str] = (),
        threshold: float = 0.5,
        run_id: str | None = None,
        trusted: bool = False,
    ) -> EvaluationResult:
        """Evaluate a model version and store the result.

        Args:
            model: a model URI, a ModelVersion or an already loaded model.
            data: a dataset reference (``"name@3"``), a DatasetVersion or a DataFrame with
                the features and the ``target`` column.
            target: the label column.
            task: ``classification`` or ``regression`` (inferred from the labels when None).
            slices: columns to break the metrics down by (up to 20 values each, largest first).
            threshold: the positive-class probability threshold for binary labels.
        """
        from milepost.models.service import LoadedModel

        slices = _check_arguments(data, target, task, slices, threshold, run_id, trusted)
        loaded = (
            model if isinstance(model, LoadedModel) else self.models.load(model, trusted=trusted)
        )
        frame, dataset = self._frame(data)
        if target not in frame.columns:
            raise InvalidInput(
                f"The evaluation data has no target column {target!r}.",
                hint="Columns: " + ", ".join(map(str, frame.columns[:20])) + ".",
            )
        for column in slices:
            if column not in frame.columns:
                raise InvalidInput(f"Slice column {column!r} is not in the evaluation data.")
        if frame.empty:
            raise InvalidInput("The evaluation data has no rows.")
        y = frame[target].to_numpy()
        task = task or infer_task(y)
        features = frame.drop(columns=[target])
        if loaded.signature is not None:
            # evaluation data usually carries ids, labels and slice columns: take the inputs
            wanted = set(loaded.signature.input_names)
            inputs = loaded.prepare(features[[c for c in features.columns if c in wanted]])
        else:
            inputs = features
        if task == "classification":
            proba = (
                loaded._impl.predict_proba(inputs)
                if hasattr(loaded._impl, "predict_proba")
                else None
            )
            classes = getattr(loaded.native, "classes_", None)
            if proba is not None and np.asarray(proba).shape[1] == 2 and classes is not None:
                pred = np.where(np.asarray(proba)[:, 1] >= threshold, classes[1], classes[0])
            else:
                pred = np.asarray(loaded._impl.predict(inputs))

            def score(idx: Any) -> dict[str, float | None]:
                return classification_metrics(
                    y[idx], pred[idx], None if proba is None else np.asarray(proba)[idx], classes
                )
        else:
            pred = np.asarray(loaded._impl.predict(inputs), dtype=np.float64).ravel()

            def score(idx: Any) -> dict[str, float | None]:
                return regression_metrics(y[idx], pred[idx])

        everything = np.arange(len(frame))
        metrics = score(everything)
        slice_out: dict[str, dict[str, dict[str, Any]]] = {}
        for column in slices:
            counts = frame[column].astype("string").fillna("<null>").value_counts()
            keys = frame[column].astype("string").fillna("<null>").to_numpy()
            slice_out[column] = {
                str(value): {"n": int(n), **score(np.flatnonzero(keys == value))}
                for value, n in counts.head(_MAX_SLICE_VALUES).items()
            }
        version = loaded.version
        result = EvaluationResult(
            eval_id=uuid.uuid4().hex,
            model_uri=version.uri,
            dataset_ref=dataset.ref if dataset else None,
            task=task,
            target=target,
            num_rows=len(frame),
            metrics=metrics,
            slices=slice_out,
            created_by=self.actor,
            created_at=int(time.time() * 1000),
        )
        self.store.add(
            {
                "eval_id": result.eval_id,
                "version_id": version.version_id,
                "dataset_version_id": dataset.version_id if dataset else None,
                "task": task,
                "target": target,
                "num_rows": result.num_rows,
                "metrics_json": json.dumps(metrics),
                "slices_json": json.dumps(slice_out),
                "run_id": run_id,
                "created_by": self.actor,
                "created_at": result.created_at,
            }
        )
        return result

    def for_version(self, uri: str | ModelVersion, *, limit: int = 20) -> list[EvaluationResult]:
        """Stored evaluations of a model version, newest first."""
        version = self.models.resolve(uri)
        return self.store.for_version(version.version_id, version.uri, limit=limit)


def _check_arguments(
    data: Any,
    target: Any,
    task: Any,
    slices: Any,
    threshold: Any,
    run_id: Any,
    trusted: Any,
) -> list[str]:
    """The arguments of :meth:`EvaluationService.evaluate`, checked; returns the slices."""
    check.name(target, "target")
    if task is not None:
        check.choice(task, "task", ("classification", "regression"))
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 <= threshold <= 1
    ):
        raise InvalidInput(
            f"threshold must be a probability from 0 to 1, got {check.short_repr(threshold)}."
        )
    if run_id is not None:
        check.run_id(run_id)
    check.boolean(trusted, "trusted")
    check.unique_columns(data, "The evaluation data")
    return check.string_list(slices, "slices")
