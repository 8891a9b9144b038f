"""Model code of the demo: preprocessing, scores and the ROC figure."""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.metrics import roc_curve
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from milepost.demo.data import CATEGORICAL, NUMERIC
from milepost.evaluation import classification_metrics

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
    """The metrics the demo logs: the ones promotion gates compute (ROC AUC, PR AUC,
    balanced accuracy, ..., and the label's ``base_rate`` to read them against)."""
    pred = (proba >= 0.5).astype(int)
    metrics = classification_metrics(y, pred, proba, classes=[0, 1])
    return {k: v for k, v in metrics.items() if v is not None}


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
