"""Evaluation metrics (scikit-learn underneath), per task, with per-slice breakdowns."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np

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


def _safe(fn: Any, *args: Any, **kwargs: Any) -> float | None:
    try:
        with warnings.catch_warnings():  # ill-defined on a small slice: the value says so
            warnings.simplefilter("ignore")
            value = float(fn(*args, **kwargs))
    except ValueError:  # e.g. ROC AUC on a slice with one class
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

    y = np.asarray(y)
    pred = np.asarray(pred)
    labels = np.asarray(classes) if classes is not None else np.unique(np.concatenate([y, pred]))
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
        p = np.asarray(proba, dtype=np.float64)
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

    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64).ravel()
    mse = _safe(m.mean_squared_error, y, pred)
    return {
        "rmse": None if mse is None else math.sqrt(mse),
        "mae": _safe(m.mean_absolute_error, y, pred),
        "r2": _safe(m.r2_score, y, pred) if len(y) > 1 else None,
    }
