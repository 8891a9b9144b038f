"""The result of :func:`~milepost.monitoring.feature_drift.drift`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost.monitoring.profiles import Profile

#: Statuses of features that were compared (they count in ``drifted_share``).
COMPARED = frozenset({"ok", "constant", "all_null"})
#: Statuses of schema problems (never counted as drift; named by ``summary()``).
SCHEMA = ("missing_in_current", "new_in_current", "type_mismatch", "no_method")


@dataclass(frozen=True)
class DriftResult:
    """What :func:`drift` found.

    Attributes:
        features: one row per feature and method (columns ``feature, kind, method,
            statistic, p_value`` (NaN for distances), ``threshold, drifted, status,
            detail, counted`` (whether the row counts towards ``drifted_share``),
            ``reference_null_share, current_null_share``).
        drifted_share: drifted / compared features (0 when none was compared).
        dataset_drift: share >= ``drift_share`` or an important feature drifted.
        drifted_features: names of the drifted features, in the reference's order.
        important_drifted: drifted features whose importance >= ``importance_threshold``.
        unseen_categories: feature -> current values the reference lacks (at most 100
            listed per feature, most frequent first).
        counted: kind -> the method that counts for it.
        reference, current: the two sides' profiles (for plots).
        exact: False when the reference was a stored profile (KS and Wasserstein approximate).
    """

    features: Any  # pandas.DataFrame; Any keeps pandas out of the import path
    drifted_share: float
    dataset_drift: bool
    drift_share: float
    importance_threshold: float
    compared: int
    drifted_features: list[str]
    important_drifted: list[str]
    unseen_categories: dict[str, list[str]]
    counted: dict[str, str]
    reference: Profile
    current: Profile
    exact: bool

    def status_of(self, feature: str) -> str:
        """A feature's status (``ok``, ``constant``, ``all_null``, ...)."""
        rows = self.features[self.features["feature"] == feature]
        if rows.empty:
            raise InvalidInput(f"No feature {feature!r} in this result.")
        return str(rows["status"].iloc[0])

    def summary(self) -> str:
        """One line: how many features drifted, the verdict and why, schema problems."""
        counted = ", ".join(f"{m} for {k}" for k, m in self.counted.items())
        line = (
            f"{len(self.drifted_features)} of {self.compared} features drifted "
            f"({self.drifted_share:.0%}; counted: {counted}); dataset drift: "
            f"{'YES' if self.dataset_drift else 'no'}"
        )
        reasons = []
        if self.compared and self.drifted_share >= self.drift_share:
            reasons.append(f"share >= {self.drift_share:.0%}")
        if self.important_drifted:
            reasons.append(f"important feature drifted: {', '.join(self.important_drifted)}")
        if reasons:
            line += f" ({'; '.join(reasons)})"
        statuses = self.features.groupby("feature", sort=False)["status"].first()
        problems = [
            f"{(statuses == s).sum()} {s.replace('_', ' ')}"
            for s in ("empty", *SCHEMA)
            if (statuses == s).any()
        ]
        if problems:
            line += f". Not compared: {', '.join(problems)}"
        return line + "."

    def to_dict(self, *, profiles: bool = False) -> dict[str, Any]:
        """JSON-ready (NaN written as ``None``); ``profiles=True`` adds both profiles."""
        rows = [
            {k: _json_value(v) for k, v in row.items()}
            for row in self.features.to_dict(orient="records")
        ]
        out: dict[str, Any] = {
            "drifted_share": self.drifted_share,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "importance_threshold": self.importance_threshold,
            "compared": self.compared,
            "drifted_features": list(self.drifted_features),
            "important_drifted": list(self.important_drifted),
            "unseen_categories": {k: list(v) for k, v in self.unseen_categories.items()},
            "counted": dict(self.counted),
            "exact": self.exact,
            "summary": self.summary(),
            "features": rows,
        }
        if profiles:
            out["reference"] = self.reference.to_dict()
            out["current"] = self.current.to_dict()
        return out


def _json_value(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    return v
