"""Multivariate drift: can a classifier tell current rows from reference rows?

Per-column tests miss a change in how columns relate (a correlation that flips while
every column keeps its distribution). :func:`domain_classifier_drift` trains a
gradient-boosted classifier (scikit-learn's ``HistGradientBoostingClassifier``;
categorical columns natively) to tell reference rows (0) from current rows (1):

- **AUC**: out-of-fold ROC AUC over every row (``folds``-fold stratified
  cross-validation, so each row is scored by a model that did not see it). 0.5 means
  the two sides cannot be told apart; 1.0 means every row gives its side away.
- **Verdict**: ``drifted`` when the AUC is at least ``threshold`` (default 0.55: a small
  but real separability) *and* significant: ``p_value`` is the one-sided chance of an AUC
  at least this high when both sides come from one distribution (the Mann-Whitney null:
  mean 0.5, variance ``(n0 + n1 + 1) / (12 n0 n1)``), below ``alpha`` (default 0.01).
  ``ci`` is a 95% interval for the AUC (Hanley-McNeil standard error).
- **Features that separate them**: for each column, the drop in out-of-fold AUC when that
  column is shuffled within the held-out fold (permutation importance, averaged over the
  folds; 0 means the classifier did not use it), highest first.

**Size**: each side is subsampled (uniformly, without replacement, seeded) to at most
``max_rows`` rows (default 10,000), so the cost stays about constant whatever the input
size (a few seconds for 25 columns); ``rows_reference``/``rows_current`` say what was used
and ``subsampled`` whether rows were left out.

**Bad input**: only columns present on both sides are compared (others listed in
``skipped``); a column that is entirely null on both sides is skipped too, and so is a
date-time column (time alone tells two windows apart; leave ids out with ``columns=`` for
the same reason). A side with fewer than ``MIN_ROWS`` rows gives
``status="insufficient_data"`` and no verdict (``auc`` None). Non-numeric columns are
categorical (or name them with ``categorical=``): the ``MAX_CATEGORIES - 1`` most
frequent values each a category, rarer ones pooled into one. Nulls are handled by the
classifier natively.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from milepost._records import record_dict
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

__all__ = [
    "DOMAIN_AUC_THRESHOLD",
    "MAX_CATEGORIES",
    "MIN_ROWS",
    "DomainClassifierResult",
    "domain_classifier_drift",
]

#: Default AUC from which reference and current count as told apart.
DOMAIN_AUC_THRESHOLD = 0.55
#: Fewest rows per side for a verdict.
MIN_ROWS = 20
#: Categories per column the classifier tells apart; rarer ones are pooled into one.
MAX_CATEGORIES = 255


@dataclass(frozen=True)
class DomainClassifierResult:
    """The domain classifier's verdict (module docstring).

    ``importance`` maps each compared column to its permutation importance (AUC drop),
    highest first; ``status`` is ``"drift"``, ``"no_drift"`` or ``"insufficient_data"``.
    """

    auc: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    threshold: float
    alpha: float
    drifted: bool
    status: str
    importance: dict[str, float]
    rows_reference: int
    rows_current: int
    subsampled: bool
    skipped: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def top_features(self) -> list[str]:
        """Columns with a positive importance, most separating first."""
        return [k for k, v in self.importance.items() if v > 0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``top_features``)."""
        return record_dict(self, extra={"top_features": self.top_features})

    def __repr__(self) -> str:
        auc = "-" if self.auc is None else f"{self.auc:.3f}"
        top = ", ".join(self.top_features[:3]) or "-"
        return f"DomainClassifierResult({self.status}: AUC {auc}, top {top})"


def _encode(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], categorical: set[str]
) -> tuple[Any, list[bool]]:
    """Both sides as one float matrix (categories as shared integer codes, nulls NaN)."""
    import pandas as pd

    parts: list[Any] = []
    is_cat: list[bool] = []
    for col in columns:
        ref, cur = reference[col], current[col]
        if col in categorical:
            both = pd.concat([ref, cur], ignore_index=True).astype(object)
            both = both.where(both.isna(), both.astype(str))
            # the classifier takes at most MAX_CATEGORIES categories: the rest share one
            top = both.value_counts().index[: MAX_CATEGORIES - 1]
            codes = both.map({v: float(i) for i, v in enumerate(top)}).astype(np.float64)
            values = codes.to_numpy(copy=True)
            values[np.isnan(values) & both.notna().to_numpy()] = MAX_CATEGORIES - 1
        else:
            values = pd.to_numeric(
                pd.concat([ref, cur], ignore_index=True), errors="coerce"
            ).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            values[~np.isfinite(values)] = np.nan
        parts.append(values)
        is_cat.append(col in categorical)
    return np.column_stack(parts), is_cat


def _model(is_cat: list[bool], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        categorical_features=np.asarray(is_cat, dtype=bool) if any(is_cat) else None,
        early_stopping=False,
        random_state=seed,
    )


def domain_classifier_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    categorical: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    max_rows: int = 10_000,
    folds: int = 5,
    threshold: float = DOMAIN_AUC_THRESHOLD,
    alpha: float = 0.01,
    seed: int = 0,
    threads: int | None = 1,
) -> DomainClassifierResult:
    """Whether a classifier tells ``current`` rows from ``reference`` rows (module
    docstring).

    Args:
        reference, current: the two samples, one row per observation.
        categorical: columns to treat as categories (default: the non-numeric ones).
        columns: the columns to compare (default: every column on both sides).
        max_rows: the most rows used per side (a seeded uniform sample beyond).
        folds: cross-validation folds (at least 2).
        threshold: the AUC from which the sides count as told apart.
        alpha: the significance level the AUC must also reach.
        seed: the seed of the sampling, the folds, the shuffles and the model.
        threads: OpenMP threads for the classifier (default 1: on a busy machine more
            threads than free cores made it about 8x slower here; ``None``: all cores).

    Raises:
        InvalidInput: no column in common, an unknown column named, or bad settings.
    """
    import pandas as pd

    # the classifier's module loads the OpenMP runtime: before the limit, or it misses it
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    if folds < 2 or max_rows < MIN_ROWS or not 0.5 <= threshold <= 1.0:
        raise InvalidInput(
            f"folds={folds}, max_rows={max_rows}, threshold={threshold}.",
            hint=f"Use folds >= 2, max_rows >= {MIN_ROWS} and 0.5 <= threshold <= 1.",
        )
    common = [c for c in reference.columns if c in set(current.columns)]
    skipped = sorted(set(reference.columns) ^ set(current.columns), key=str)
    if columns is not None:
        unknown = [c for c in columns if c not in common]
        if unknown:
            raise InvalidInput(
                f"Columns {unknown} are not on both sides.",
                hint=f"Choose among {common[:20]}.",
            )
        common = list(columns)
    empty = [c for c in common if reference[c].isna().all() and current[c].isna().all()]
    times = [
        c
        for c in common
        if pd.api.types.is_datetime64_any_dtype(reference[c])
        or pd.api.types.is_datetime64_any_dtype(current[c])
    ]
    skipped += empty + [c for c in times if c not in empty]
    common = [c for c in common if c not in empty and c not in times]
    if not common:
        raise InvalidInput(
            "Reference and current have no (non-null) column in common.",
            hint="Pass frames with the same columns.",
        )
    cats = set(categorical or []) | {
        c
        for c in common
        if not (
            pd.api.types.is_numeric_dtype(reference[c])
            and pd.api.types.is_numeric_dtype(current[c])
        )
        or pd.api.types.is_bool_dtype(reference[c])
    }
    rng = np.random.default_rng(seed)
    subsampled = len(reference) > max_rows or len(current) > max_rows

    def sample(frame: pd.DataFrame) -> pd.DataFrame:
        if len(frame) <= max_rows:
            return frame[common].reset_index(drop=True)
        pick = np.sort(rng.choice(len(frame), max_rows, replace=False))
        return frame[common].iloc[pick].reset_index(drop=True)

    ref, cur = sample(reference), sample(current)
    n0, n1 = len(ref), len(cur)
    base: dict[str, Any] = {
        "threshold": threshold,
        "alpha": alpha,
        "rows_reference": n0,
        "rows_current": n1,
        "subsampled": subsampled,
        "skipped": skipped,
    }
    if min(n0, n1) < max(MIN_ROWS, folds):
        return DomainClassifierResult(
            auc=None,
            ci=None,
            p_value=None,
            drifted=False,
            status="insufficient_data",
            importance={},
            reason=f"{n0} reference and {n1} current rows; a verdict needs at least "
            f"{max(MIN_ROWS, folds)} on each side",
            **base,
        )
    x, is_cat = _encode(ref, cur, common, cats)
    y = np.r_[np.zeros(n0), np.ones(n1)]
    with threadpool_limits(limits=threads, user_api="openmp"):
        oof, drops = _cross_validate(x, y, is_cat, folds, seed, rng)
    auc = _auc(y, oof)
    se_null = math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1))
    p_value = float(0.5 * math.erfc((auc - 0.5) / se_null / math.sqrt(2.0)))
    ci = _hanley_mcneil(auc, n1, n0)
    drifted = auc >= threshold and p_value < alpha
    importance = dict(
        sorted(
            ((c, float(d / folds)) for c, d in zip(common, drops, strict=True)),
            key=lambda kv: -kv[1],
        )
    )
    verdict = "separates" if drifted else "does not separate"
    reason = (
        f"the classifier {verdict} current from reference rows: AUC {auc:.3f} "
        f"(threshold {threshold:g}, p={p_value:.3g})"
    )
    return DomainClassifierResult(
        auc=auc,
        ci=ci,
        p_value=p_value,
        drifted=drifted,
        status="drift" if drifted else "no_drift",
        importance=importance,
        reason=reason,
        **base,
    )


def _cross_validate(
    x: Any, y: Any, is_cat: list[bool], folds: int, seed: int, rng: np.random.Generator
) -> tuple[Any, Any]:
    """Out-of-fold scores, and the summed per-column AUC drops when shuffled."""
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    drops = np.zeros(x.shape[1])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        model = _model(is_cat, seed).fit(x[train], y[train])
        oof[test] = model.predict_proba(x[test])[:, 1]
        fold_auc = _auc(y[test], oof[test])
        for j in range(x.shape[1]):
            shuffled = x[test].copy()
            shuffled[:, j] = shuffled[rng.permutation(len(test)), j]
            drops[j] += fold_auc - _auc(y[test], model.predict_proba(shuffled)[:, 1])
    return oof, drops


def _auc(y: Any, score: Any) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def _hanley_mcneil(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """A 95% interval for an AUC (Hanley and McNeil's standard error), clipped to [0, 1]."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    half = 1.959964 * math.sqrt(max(var, 0.0))
    return (max(0.0, auc - half), min(1.0, auc + half))
