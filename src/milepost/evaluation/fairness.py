"""Fairness audits: how a model's decisions differ across groups of a sensitive feature.

CONTRACT (issue 15; the fairness part fills in the computation, the record is agreed):

``EvaluationService.audit_fairness(model, data, *, target, sensitive_features,
min_group_size=30, threshold=0.5, positive_label=None, trusted=False) -> FairnessResult``
scores ``model`` on ``data`` (a dataset ref, DatasetVersion or DataFrame) with fairlearn's
definitions and stores the result (table ``fairness_audits``, audited as
``fairness.audit``); ``EvaluationService.fairness_for_version(uri, limit=20)`` lists the
stored ones, newest first. ``milepost.audit_fairness(...)`` is the public facade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GROUP_COLUMNS", "SUMMARY_KEYS", "FairnessResult"]

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
