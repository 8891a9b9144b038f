"""A small stand-in for part A's ``drift``, built from real data with the real statistics.

It follows the agreed interface (``Profile``, ``ColumnProfile``, ``DriftResult`` in
/work/helpers/COMMON.md) so the report can be tested before ``milepost.monitoring.drift``
lands; then :func:`drift_result` calls the real one. Profiles hold 101 quantiles and
category counts: their size does not depend on the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from milepost.monitoring.stats import ks_test, psi_bins, psi_categorical, psi_from_samples


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: str
    count: int
    nulls: int
    quantiles: list[float] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    categories: dict[str, float] = field(default_factory=dict)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Profile:
    rows: int
    columns: dict[str, ColumnProfile]


@dataclass(frozen=True)
class DriftResult:
    features: pd.DataFrame
    reference: Profile
    current: Profile

    @property
    def _compared(self) -> pd.Series:
        rows = self.features[self.features["status"].isin(["ok", "empty"])]
        return rows.groupby("feature", sort=False)["drifted"].any()

    @property
    def compared(self) -> int:
        return len(self._compared)

    @property
    def drifted_features(self) -> list[str]:
        per = self._compared
        return [str(n) for n in per[per].index]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / self.compared if self.compared else 0.0

    @property
    def dataset_drift(self) -> bool:
        return self.drifted_share >= 0.5


def profile(frame: pd.DataFrame, categorical: Sequence[str]) -> Profile:
    cols = {}
    for name in frame.columns:
        s = frame[name]
        nulls = int(s.isna().sum())
        if name in categorical:
            vc = s.dropna().astype(str).value_counts()
            cols[name] = ColumnProfile(
                name, "categorical", int(len(s) - nulls), nulls, categories=vc.to_dict()
            )
            continue
        v = s.dropna().to_numpy(dtype=float)
        if len(v) == 0:
            cols[name] = ColumnProfile(name, "numeric", 0, nulls)
            continue
        edges = psi_bins(v)
        cols[name] = ColumnProfile(
            name,
            "numeric",
            len(v),
            nulls,
            quantiles=np.quantile(v, np.linspace(0, 1, 101)).tolist(),
            edges=edges.tolist(),
            counts=np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
            .astype(float)
            .tolist(),
            mean=float(v.mean()),
            std=float(v.std()),
            min=float(v.min()),
            max=float(v.max()),
        )
    return Profile(len(frame), cols)


def drift_result(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: Sequence[str],
    methods: Sequence[str] | None = None,
) -> Any:
    """``milepost.monitoring.drift`` when it exists, else this stand-in (PSI, and KS on
    numbers unless ``methods`` leaves it out)."""
    try:
        from milepost.monitoring import drift  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        pass
    else:
        if methods is None:
            return drift(reference, current, categorical=list(categorical))
        return drift(reference, current, categorical=list(categorical), methods=list(methods))
    rows: list[dict[str, Any]] = []
    for name in reference.columns:
        if name not in current.columns:
            kind = "categorical" if name in categorical else "numeric"
            row = _row(name, kind, "psi", float("nan"), None, 0.2)
            rows.append({**row, "drifted": False, "status": "missing_in_current"})
            continue
        r, c = reference[name].dropna(), current[name].dropna()
        if r.empty or c.empty:
            kind = "categorical" if name in categorical else "numeric"
            row = _row(name, kind, "psi", float("nan"), None, 0.2)
            rows.append({**row, "drifted": False, "status": "empty"})
            continue
        if name in categorical:
            value = psi_categorical(
                r.astype(str).value_counts().to_dict(), c.astype(str).value_counts().to_dict()
            )
            rows.append(_row(name, "categorical", "psi", value, None, 0.2))
            continue
        value = psi_from_samples(r.to_numpy(float), c.to_numpy(float))
        rows.append(_row(name, "numeric", "psi", value, None, 0.2))
        if methods is not None and "ks" not in methods:
            continue
        ks = ks_test(r.to_numpy(float), c.to_numpy(float))
        rows.append(_row(name, "numeric", "ks", ks.statistic, ks.pvalue, 0.05))
    return DriftResult(
        pd.DataFrame(rows), profile(reference, categorical), profile(current, categorical)
    )


def _row(
    name: str, kind: str, method: str, stat: float, p: float | None, threshold: float
) -> dict[str, Any]:
    drifted = (p < threshold) if p is not None else stat > threshold
    return {
        "feature": name,
        "kind": kind,
        "method": method,
        "statistic": stat,
        "p_value": float("nan") if p is None else p,
        "threshold": threshold,
        "drifted": bool(drifted),
        "status": "ok",
    }
