"""Evaluation metrics (scikit-learn underneath), per task, with per-slice breakdowns."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np

from milepost.errors import InvalidInput

__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "Task",
    "classification_metrics",
    "infer_task",
    "regression_metrics",
]

Task = Literal["classification", "regression"]

HIGHER_IS_BETTER = frozenset(
    {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "r2"}
)
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})


def infer_task(y: Any) -> Task:
    """Classification for booleans, text and integers with few values; else regression."""
    arr = np.asarray(y)
    if arr.dtype.kind in "bOUS":
        return "classification"
    if arr.dtype.kind in "iu" and len(np.unique(arr)) <= 20:
        return "classification"
    return "regression"


def _vector(value: Any, what: str, *, numeric: bool = False, size: int | None = None) -> Any:
    """``value`` as a 1-D array (of floats when ``numeric``), of ``size`` items if given."""
    try:
        arr = np.asarray(value, dtype=np.float64 if numeric else None)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{what} must be a 1-D array of {'numbers' if numeric else 'labels'}: {exc}."
        ) from None
    if arr.ndim != 1 or arr.dtype.kind not in "biufcOUS":
        raise InvalidInput(
            f"{what} must be a 1-D array of {'numbers' if numeric else 'labels'}, got "
            f"{arr.ndim} dimension(s) of {arr.dtype}."
        )
    if size is not None and len(arr) != size:
        raise InvalidInput(f"{what} has {len(arr)} items; the labels have {size}.")
    return arr


def _safe(fn: Any, *args: Any, **kwargs: Any) -> float | None:
    """The metric, or None where it is undefined (ROC AUC on a slice with one class...)."""
    try:
        with warnings.catch_warnings():
            # ill-defined on a small slice (one class...): the value (None) says so, and
            # a warning would only repeat it
            warnings.simplefilter("ignore")
            value = float(fn(*args, **kwargs))
    except ValueError:  # e.g. ROC AUC on a slice with one class (older scikit-learn)
        return None
    return None if math.isnan(value) else value


def classification_metrics(
    y: Any, pred: Any, proba: Any | None, classes: Any | None = None
) -> dict[str, float | None]:
    """Accuracy, balanced accuracy, precision, recall, F1 and, with probabilities, ROC
    AUC, PR AUC (average precision), log loss and Brier.

    Binary problems score the positive class (the larger label) and report its share as
    ``base_rate``: on an imbalanced label, accuracy near the base rate and PR AUC near it
    mean no skill. Multi-class problems use macro averages and one-vs-rest ROC AUC.
    """
    from sklearn import metrics as m

    y = _vector(y, "y")
    pred = _vector(pred, "pred", size=len(y))
    if not len(y):
        raise InvalidInput("y is empty: there is nothing to score.")
    given = None if classes is None else _vector(classes, "classes")
    try:  # scikit-learn sorts the labels: they must be comparable with each other
        found = np.unique(np.concatenate([y, pred, *([] if given is None else [given])]))
    except TypeError as exc:
        raise InvalidInput(f"The labels cannot be compared with each other: {exc}.") from None
    labels = found if given is None else given
    if not len(labels):
        raise InvalidInput("classes is empty.")
    binary = len(labels) <= 2
    avg = "binary" if binary else "macro"
    kwargs: dict[str, Any] = {"zero_division": 0}
    if binary:
        kwargs["pos_label"] = labels[-1]
    out: dict[str, float | None] = {
        "accuracy": _safe(m.accuracy_score, y, pred),
        "balanced_accuracy": _safe(m.balanced_accuracy_score, y, pred),
        "precision": _safe(m.precision_score, y, pred, average=avg, **kwargs),
        "recall": _safe(m.recall_score, y, pred, average=avg, **kwargs),
        "f1": _safe(m.f1_score, y, pred, average=avg, **kwargs),
    }
    if binary and len(y):
        out["base_rate"] = float(np.mean(y == labels[-1]))
    if proba is not None:
        try:
            p = np.asarray(proba, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"proba must be an array of probabilities: {exc}.") from None
        if p.ndim not in (1, 2) or len(p) != len(y):
            raise InvalidInput(
                f"proba must have one row per label ({len(y)}), got shape {p.shape}."
            )
        if binary:
            positive = p[:, -1] if p.ndim == 2 else p
            y_bin = (y == labels[-1]).astype(int)
            out["roc_auc"] = _safe(m.roc_auc_score, y_bin, positive)
            # with no positive row there is no precision-recall curve (sklearn says 0)
            out["pr_auc"] = (
                _safe(m.average_precision_score, y_bin, positive) if y_bin.any() else None
            )
            out["log_loss"] = _safe(
                m.log_loss, y_bin, np.clip(positive, 1e-15, 1 - 1e-15), labels=[0, 1]
            )
            out["brier"] = _safe(m.brier_score_loss, y_bin, positive)
        else:
            out["roc_auc"] = _safe(m.roc_auc_score, y, p, multi_class="ovr", labels=labels)
            out["log_loss"] = _safe(m.log_loss, y, p, labels=labels)
    return out


def regression_metrics(y: Any, pred: Any) -> dict[str, float | None]:
    """RMSE, MAE and R²."""
    from sklearn import metrics as m

    y = _vector(y, "y", numeric=True)
    pred = _vector(np.ravel(pred) if isinstance(pred, np.ndarray) else pred, "pred", numeric=True)
    if len(pred) != len(y):
        raise InvalidInput(f"pred has {len(pred)} items; y has {len(y)}.")
    mse = _safe(m.mean_squared_error, y, pred)
    return {
        "rmse": None if mse is None else math.sqrt(mse),
        "mae": _safe(m.mean_absolute_error, y, pred),
        "r2": _safe(m.r2_score, y, pred) if len(y) > 1 else None,
    }
