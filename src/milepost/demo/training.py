"""Model code of the demo: preprocessing, scores and the ROC figure."""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
    roc_curve,
)
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from milepost.demo.data import CATEGORICAL, NUMERIC

__all__ = ["MODEL_NUMERIC", "preprocess", "roc_figure", "scores"]

MODEL_NUMERIC = [*NUMERIC, "spend_per_ticket"]


def preprocess(scale: bool, numeric: list[str] | None = None) -> ColumnTransformer:
    """Scale (or pass) numbers, one-hot encode categories."""
    step: Any = StandardScaler() if scale else "passthrough"
    return ColumnTransformer(
        [
            ("num", step, numeric or NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def scores(y: Any, proba: Any) -> dict[str, float]:
    """The classification metrics the demo logs."""
    pred = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred)),
        "roc_auc": float(roc_auc_score(y, proba)),
        "log_loss": float(log_loss(y, proba)),
        "brier": float(brier_score_loss(y, proba)),
    }


def roc_figure(y: Any, curves: dict[str, Any]) -> Any:
    """ROC curves as a matplotlib figure (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        return None
    fig, ax = plt.subplots(figsize=(4, 4))
    for label, proba in curves.items():
        fpr, tpr, _ = roc_curve(y, proba)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
