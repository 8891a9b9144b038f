"""Distribution statistics shared by data validation and monitoring.

Pure functions over NumPy arrays; no I/O.

PSI (population stability index) compares two histograms over the same bins::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

with ``e`` and ``a`` the expected (reference) and actual proportions. It is zero for
identical distributions, never negative and symmetric in its arguments. Empty bins get
a small floor (``eps``) so the logarithm stays finite. Rules of thumb: < 0.1 stable,
0.1-0.25 moderate shift, > 0.25 major shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["KsResult", "ks_test", "psi", "psi_bins", "psi_from_samples"]

FloatArray = npt.NDArray[np.float64]


def psi(
    expected_counts: npt.ArrayLike, actual_counts: npt.ArrayLike, *, eps: float = 1e-4
) -> float:
    """PSI between two count (or proportion) vectors over the same bins."""
    e = np.asarray(expected_counts, dtype=np.float64)
    a = np.asarray(actual_counts, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1 or e.size == 0:
        raise ValueError(
            f"PSI needs two count vectors of the same length, got {e.shape} and {a.shape}"
        )
    if (e < 0).any() or (a < 0).any():
        raise ValueError("PSI counts must not be negative")
    if e.sum() == 0 or a.sum() == 0:
        raise ValueError("PSI needs at least one observation on each side")
    ep = np.clip(e / e.sum(), eps, None)
    ap = np.clip(a / a.sum(), eps, None)
    ep, ap = ep / ep.sum(), ap / ap.sum()
    return float(np.sum((ap - ep) * np.log(ap / ep)))


def psi_bins(reference: npt.ArrayLike, n_bins: int = 10) -> FloatArray:
    """Inner bin edges at the reference's quantiles (duplicates removed).

    Values are binned with ``np.searchsorted(edges, x, side="right")``, giving
    ``len(edges) + 1`` bins, the outer two open-ended.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.array([], dtype=np.float64)
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    return np.unique(np.quantile(ref, qs))


def _counts(values: FloatArray, edges: FloatArray) -> FloatArray:
    values = values[np.isfinite(values)]
    idx = np.searchsorted(edges, values, side="right")
    return np.bincount(idx, minlength=edges.size + 1).astype(np.float64)


def psi_from_samples(reference: npt.ArrayLike, current: npt.ArrayLike, n_bins: int = 10) -> float:
    """PSI of ``current`` against ``reference``, binned at the reference's quantiles."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    edges = psi_bins(ref, n_bins)
    return psi(_counts(ref, edges), _counts(cur, edges))


@dataclass(frozen=True)
class KsResult:
    """Two-sample Kolmogorov-Smirnov test: the statistic (max CDF gap) and p-value."""

    statistic: float
    pvalue: float


def ks_test(reference: npt.ArrayLike, current: npt.ArrayLike) -> KsResult:
    """Two-sample KS test (SciPy), ignoring NaN."""
    from scipy.stats import ks_2samp

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        raise ValueError("the KS test needs at least one value on each side")
    result = ks_2samp(ref, cur)
    return KsResult(float(result.statistic), float(result.pvalue))
