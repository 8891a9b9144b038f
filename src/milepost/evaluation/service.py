"""``evaluate``: score a model version on data, overall and per slice, and store it.

The result is linked to the model version and, when the data is a registered dataset
version, to that version too, so "how did v3 do on customers@2" is a query.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.data.models import DatasetVersion
from milepost.errors import InvalidInput, did_you_mean
from milepost.evaluation.backends.sql import SqlEvaluationStore, SqlFairnessStore
from milepost.evaluation.fairness import NULL_GROUP, FairnessResult, fairness_metrics
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

__all__ = ["EvaluationResult", "EvaluationService", "FairnessResult"]

_MAX_SLICE_VALUES = 20
_AUDIT_ID = re.compile(r"[0-9a-f]{4,32}")


class EvaluationService:
    """Scores models with the same metrics everywhere (CLI, gates, server)."""

    actor = ActorAttribute()

    def __init__(
        self, db: MetadataStore, settings: Settings, *, models: ModelService, data: DataService
    ) -> None:
        self.store = SqlEvaluationStore(db)
        self.fairness_store = SqlFairnessStore(db)
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
        pred, proba, classes = _predict(loaded, frame.drop(columns=[target]), task, threshold)
        if task == "classification":

            def score(idx: Any) -> dict[str, float | None]:
                return classification_metrics(
                    y[idx], pred[idx], None if proba is None else proba[idx], classes
                )
        else:

            def score(idx: Any) -> dict[str, float | None]:
                return regression_metrics(y[idx], pred[idx])

        everything = np.arange(len(frame))
        metrics = score(everything)
        slice_out: dict[str, dict[str, dict[str, Any]]] = {}
        for column in slices:
            values = frame[column].astype("string").fillna(NULL_GROUP)
            counts, keys = values.value_counts(), values.to_numpy()
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

    # -- fairness -----------------------------------------------------------------------

    def audit_fairness(
        self,
        model: str | ModelVersion | LoadedModel,
        data: Any,
        *,
        target: str,
        sensitive_features: Sequence[str],
        min_group_size: int = 30,
        threshold: float = 0.5,
        positive_label: Any = None,
        trusted: bool = False,
    ) -> FairnessResult:
        """Audit a binary classifier's fairness across sensitive features; stored, audited.

        The model predicts as in :meth:`evaluate`. Per sensitive feature and group: count,
        positive labels, selection rate, TPR, FPR and accuracy; per feature: demographic
        parity difference and ratio, equalized odds difference and ratio, all with
        fairlearn's definitions over every group (see :mod:`milepost.evaluation.fairness`).
        Groups with fewer than ``min_group_size`` rows, or whose TPR or FPR rests on fewer
        than that many positive or negative labels, are flagged ``unreliable`` (they still
        count in the summary; the flag says which numbers to read with care). A missing
        sensitive value is the group ``"<null>"``.

        Args:
            model: a model URI, a ModelVersion or an already loaded model.
            data: a dataset reference (``"name@3"``), a DatasetVersion or a DataFrame with
                the features, the ``target`` column and the sensitive columns.
            target: the label column (binary, or any labels with ``positive_label``).
            sensitive_features: the columns to audit, e.g. ``["gender"]`` (they need not
                be model inputs).
            min_group_size: fewer rows (or positives, or negatives) flag a group.
            threshold: the positive-class probability threshold.
            positive_label: the favourable/positive label; default the model's second
                class (``classes_[1]``).
            trusted: load a pickled model (see :meth:`ModelService.load`).

        Returns:
            The stored :class:`FairnessResult`.

        Raises:
            InvalidInput: a sensitive feature or the target is not in the data, the data
                has no rows, the target has one class, or the task is not binary
                classification and no ``positive_label`` says which class is positive.
        """
        from milepost.models.service import LoadedModel

        features = _check_fairness_arguments(
            data, target, sensitive_features, min_group_size, threshold, trusted
        )
        frame, dataset = self._frame(data)
        missing = [c for c in (target, *features) if c not in frame.columns]
        if missing:
            what = "target column" if missing[0] == target else "sensitive feature"
            raise InvalidInput(
                f"The audit data has no {what} {missing[0]!r}."
                + did_you_mean(missing[0], [str(c) for c in frame.columns]),
                hint="Columns: " + ", ".join(map(str, frame.columns[:20])) + ".",
            )
        if frame.empty:
            raise InvalidInput("The audit data has no rows: a fairness audit needs labelled rows.")
        y = frame[target].to_numpy()
        nulls = int(frame[target].isna().sum())
        if nulls:
            raise InvalidInput(
                f"The target {target!r} has {nulls:,} missing value(s): each audited row "
                "needs its label.",
                hint="Drop the unlabelled rows first (or wait for their labels).",
            )
        labels = frame[target].drop_duplicates().tolist()
        if len(labels) < 2:
            raise InvalidInput(
                f"The target {target!r} has one class ({check.short_repr(labels[0])}): "
                "error rates per group need both positive and negative labels.",
                hint="Audit on data that holds both outcomes (e.g. a larger or later sample).",
            )
        loaded = (
            model if isinstance(model, LoadedModel) else self.models.load(model, trusted=trusted)
        )
        classes = getattr(loaded.native, "classes_", None)
        positive = _positive_label(positive_label, labels, classes, y, target)
        pred, _proba, _classes = _predict(
            loaded, frame.drop(columns=[target]), "classification", threshold
        )
        y_true = (y == positive).astype(np.int64)
        y_pred = (pred == positive).astype(np.int64)
        sensitive = pd.DataFrame(
            {c: frame[c].astype("string").fillna(NULL_GROUP).to_numpy() for c in features}
        )
        summary, groups, unreliable = fairness_metrics(
            y_true, y_pred, sensitive, min_group_size=min_group_size
        )
        version = loaded.version
        result = FairnessResult(
            audit_id=uuid.uuid4().hex,
            model_uri=version.uri,
            dataset_ref=dataset.ref if dataset else None,
            target=target,
            sensitive_features=features,
            summary=summary,
            groups=groups,
            num_rows=len(frame),
            min_group_size=min_group_size,
            positive_label=positive.item() if isinstance(positive, np.generic) else positive,
            created_by=self.actor,
            created_at=int(time.time() * 1000),
            unreliable_groups=unreliable,
            threshold=float(threshold),
        )
        self.fairness_store.add(
            result,
            version_id=version.version_id,
            dataset_version_id=dataset.version_id if dataset else None,
            actor=self.actor,
        )
        return result

    def fairness_for_version(
        self, uri: str | ModelVersion, *, limit: int = 20
    ) -> list[FairnessResult]:
        """Stored fairness audits of a model version, newest first."""
        check.integer(limit, "limit", minimum=1, maximum=1000)
        version = self.models.resolve(uri)
        return self.fairness_store.for_version(version.version_id, limit=limit)

    def get_fairness_audit(self, audit_id: str) -> FairnessResult:
        """One stored fairness audit by its id.

        Raises:
            NotFound: no audit has that id.
        """
        if isinstance(audit_id, str):
            audit_id = audit_id.strip().lower()
        check.name(
            audit_id,
            "Fairness audit id",
            max_length=32,
            pattern=_AUDIT_ID,
            rule="give the hex id, or at least its first 4 characters",
        )
        return self.fairness_store.get(audit_id)


def _positive_label(given: Any, labels: Any, classes: Any, y: np.ndarray, target: str) -> Any:
    """The positive class: ``given`` (matched to the labels' type), else the model's second
    class when the model and the labels are binary; otherwise a clear refusal."""
    known = list(labels)
    if given is not None:
        if given in known:
            return given
        # "1" from a command line for an integer label: match by text, when unambiguous
        by_text = [v for v in known if str(v) == str(given)]
        if len(by_text) == 1:
            return by_text[0]
        raise InvalidInput(
            f"positive_label {check.short_repr(given)} is not a value of {target!r}.",
            hint="Values: " + ", ".join(map(check.short_repr, known[:10])) + ".",
        )
    if infer_task(y) == "regression":
        raise InvalidInput(
            f"The target {target!r} looks continuous (a regression label): a fairness audit "
            "compares a binary decision across groups.",
            hint="Pass positive_label=VALUE to say which label is the positive outcome.",
        )
    if classes is None or len(classes) != 2 or len(known) > 2:
        n = len(classes) if classes is not None else len(known)
        shown = list(classes if classes is not None else known)[:10]
        raise InvalidInput(
            f"The audit needs a binary classifier; {target!r} has {n} classes "
            f"({', '.join(map(check.short_repr, shown))}).",
            hint="Pass positive_label=VALUE: that class against all others.",
        )
    return classes[1]


def _predict(
    loaded: LoadedModel, features: pd.DataFrame, task: Task, threshold: float
) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """``(predictions, class probabilities or None, the model's classes or None)``.

    The one place evaluation and fairness audits turn data into predictions: a binary
    classifier's positive class (its second) is predicted when its probability reaches
    ``threshold``; otherwise the model's own ``predict``.
    """
    if loaded.signature is not None:
        # evaluation data usually carries ids, labels and slice columns: take the inputs
        wanted = set(loaded.signature.input_names)
        inputs = loaded.prepare(features[[c for c in features.columns if c in wanted]])
    else:
        inputs = features
    if task != "classification":
        return np.asarray(loaded._impl.predict(inputs), dtype=np.float64).ravel(), None, None
    proba = (
        np.asarray(loaded._impl.predict_proba(inputs))
        if hasattr(loaded._impl, "predict_proba")
        else None
    )
    classes = getattr(loaded.native, "classes_", None)
    if proba is not None and proba.shape[1] == 2 and classes is not None:
        pred = np.where(proba[:, 1] >= threshold, classes[1], classes[0])
    else:
        pred = np.asarray(loaded._impl.predict(inputs))
    return pred, proba, classes


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


def _check_fairness_arguments(
    data: Any,
    target: Any,
    sensitive_features: Any,
    min_group_size: Any,
    threshold: Any,
    trusted: Any,
) -> list[str]:
    """The arguments of :meth:`EvaluationService.audit_fairness`; returns the features."""
    check.name(target, "target")
    features = check.string_list(sensitive_features, "sensitive_features", allow_str=True)
    if not features:
        raise InvalidInput(
            "sensitive_features is empty: name the column(s) to audit.",
            hint="For example sensitive_features=['gender'].",
        )
    if len(set(features)) != len(features):
        raise InvalidInput(f"sensitive_features repeats a column: {features}.")
    if target in features:
        raise InvalidInput(f"The target {target!r} cannot be a sensitive feature too.")
    check.integer(min_group_size, "min_group_size", minimum=1, maximum=10**9)
    _check_arguments(data, target, None, (), threshold, None, trusted)
    return features
