"""Fairness audits: how a model's decisions differ across groups of a sensitive feature.

CONTRACT (issue 15; the fairness part fills in the computation, the record is agreed):

``EvaluationService.audit_fairness(model, data, *, target, sensitive_features,
min_group_size=30, threshold=0.5, positive_label=None, trusted=False) -> FairnessResult``
scores ``model`` on ``data`` (a dataset ref, DatasetVersion or DataFrame) with fairlearn's
definitions and stores the result (table ``fairness_audits``, audited as
``fairness.audit``); ``EvaluationService.fairness_for_version(uri, limit=20)`` lists the
stored ones, newest first. ``milepost.audit_fairness(...)`` is the public facade.

The numbers are fairlearn's (:mod:`fairlearn.metrics`): per group a ``MetricFrame`` of
selection rate, true and false positive rate, accuracy and count; per sensitive feature
``demographic_parity_difference``/``_ratio`` and ``equalized_odds_difference``/``_ratio``
(worst case over groups). Each sensitive feature is audited on its own (not their
intersections); a missing value in a sensitive column is a group of its own, ``"<null>"``.

Small groups are *flagged*, not dropped: a group with fewer than ``min_group_size`` rows,
or whose TPR (FPR) rests on fewer than that many positive (negative) labels, is
``unreliable``; the summary still uses fairlearn's definitions over every group, so one
noisy small group can move it, and the flag says which. A summary value fairlearn cannot
give meaningfully is None: equalized odds when some group has no positive or no negative
label (its TPR or FPR is undefined), a ratio whose denominator is 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["GROUP_COLUMNS", "NULL_GROUP", "SUMMARY_KEYS", "FairnessResult", "fairness_metrics"]

#: The group of rows whose sensitive value is missing.
NULL_GROUP = "<null>"

#: The keys of ``FairnessResult.summary[feature]``.
SUMMARY_KEYS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)
#: The columns of ``FairnessResult.by_group`` (one row per sensitive feature and group).
GROUP_COLUMNS = (
    "feature",
    "group",
    "count",
    "positives",  # rows whose label is the positive class
    "selection_rate",
    "tpr",  # true positive rate (None when the group has no positive label)
    "fpr",  # false positive rate (None when the group has no negative label)
    "accuracy",
    "unreliable",  # True when count < min_group_size (or a rate rests on too few rows)
)


@dataclass(frozen=True)
class FairnessResult:
    """One fairness audit of a model version on some data.

    ``summary[feature]`` maps each of :data:`SUMMARY_KEYS` to its value (None when it
    cannot be computed, e.g. a group with no positive label); ``groups`` holds one dict per
    sensitive feature and group with :data:`GROUP_COLUMNS`; ``by_group`` is that as a
    DataFrame.
    """

    audit_id: str
    model_uri: str
    dataset_ref: str | None
    target: str
    sensitive_features: list[str]
    summary: dict[str, dict[str, float | None]]
    groups: list[dict[str, Any]]
    num_rows: int
    min_group_size: int
    positive_label: Any = None
    created_by: str = ""
    created_at: int = 0
    unreliable_groups: list[str] = field(default_factory=list)  # "feature=group"
    threshold: float = 0.5

    @property
    def by_group(self) -> pd.DataFrame:
        """Per group counts and rates, one row per (feature, group)."""
        import pandas as pd

        return pd.DataFrame(self.groups, columns=list(GROUP_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``model`` and ``dataset`` for the URI and the ref)."""
        return record_dict(self, rename={"model_uri": "model", "dataset_ref": "dataset"})

    def __repr__(self) -> str:
        parts = []
        for feature, values in self.summary.items():
            ratio = values.get("demographic_parity_ratio")
            parts.append(f"{feature}: DP ratio {ratio:.3f}" if ratio is not None else feature)
        return f"FairnessResult({self.model_uri}, {'; '.join(parts)})"


def _number(value: Any) -> float | None:
    """A float, or None for NaN, infinities and missing values (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fairness_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: pd.DataFrame,
    *,
    min_group_size: int,
) -> tuple[dict[str, dict[str, float | None]], list[dict[str, Any]], list[str]]:
    """Fairlearn's group metrics and disparities for each column of ``sensitive``.

    Args:
        y_true: the labels as 0/1 (1 is the positive class).
        y_pred: the predictions as 0/1.
        sensitive: one column per sensitive feature, values as text (``"<null>"`` for a
            missing value), aligned with the labels.
        min_group_size: fewer rows, positives or negatives than this flag a group.

    Returns:
        ``(summary, groups, unreliable)`` as :class:`FairnessResult` holds them.
    """
    import numpy as np
    from fairlearn.metrics import (  # type: ignore[import-untyped]  # fairlearn ships no types
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    summary: dict[str, dict[str, float | None]] = {}
    groups: list[dict[str, Any]] = []
    unreliable: list[str] = []
    metrics = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "accuracy": accuracy_score,
        "count": count,
        "positives": lambda t, p: int(np.sum(t)),
    }
    for feature in sensitive.columns:
        s = sensitive[feature].to_numpy()
        with warnings.catch_warnings():
            # fairlearn and scikit-learn warn on a group with one label; the rates that
            # rest on no rows are set to None below instead
            warnings.simplefilter("ignore")
            frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=s)
            dp_diff = demographic_parity_difference(y_true, y_pred, sensitive_features=s)
            dp_ratio = demographic_parity_ratio(y_true, y_pred, sensitive_features=s)
            eo_diff = equalized_odds_difference(y_true, y_pred, sensitive_features=s)
            eo_ratio = equalized_odds_ratio(y_true, y_pred, sensitive_features=s)
        table = frame.by_group
        odds_defined = True
        for group, row in table.iterrows():
            n, positives = int(row["count"]), int(row["positives"])
            negatives = n - positives
            odds_defined = odds_defined and positives > 0 and negatives > 0
            flagged = (
                n < min_group_size or positives < min_group_size or (negatives < min_group_size)
            )
            groups.append(
                {
                    "feature": str(feature),
                    "group": str(group),
                    "count": n,
                    "positives": positives,
                    "selection_rate": _number(row["selection_rate"]),
                    "tpr": _number(row["tpr"]) if positives else None,
                    "fpr": _number(row["fpr"]) if negatives else None,
                    "accuracy": _number(row["accuracy"]),
                    "unreliable": flagged,
                }
            )
            if flagged:
                unreliable.append(f"{feature}={group}")
        summary[str(feature)] = {
            "demographic_parity_difference": _number(dp_diff),
            "demographic_parity_ratio": _number(dp_ratio),
            "equalized_odds_difference": _number(eo_diff) if odds_defined else None,
            "equalized_odds_ratio": _number(eo_ratio) if odds_defined else None,
        }
    return summary, groups, unreliable
