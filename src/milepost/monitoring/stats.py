"""Distribution statistics: one implementation of each, shared by data validation
(:class:`~milepost.data.validation.Distribution`), canary analysis (prediction PSI) and
the monitors.

Pure functions over NumPy arrays and count mappings; no I/O. Bad input (vectors of
different lengths, negative counts, an empty side) raises :class:`ValueError` naming
what was wrong; callers that take user input turn it into ``InvalidInput``.

PSI
---
The population stability index compares two histograms over the same bins::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

with ``e`` and ``a`` the expected (reference) and actual (current) *proportions*. It is
zero for identical distributions, never negative, symmetric in its arguments and
invariant to scaling either side's counts. Rules of thumb: < 0.1 stable, 0.1-0.25
moderate shift, > 0.25 major shift.

- **Empty bins**: a bin empty on one side would make the logarithm infinite, so each
  side's proportions are floored at ``eps`` (default ``1e-4``) and renormalised to sum
  to one before the sum above. With the default, a bin holding 10% of one side and
  nothing of the other contributes about ``0.1 * ln(0.1 / 1e-4) = 0.69``.
- **Numbers** (:func:`psi_from_samples`): inner bin edges at the reference's quantiles
  ``1/n, 2/n, ..., (n-1)/n`` (deciles for ``n_bins=10``), duplicate edges dropped, so a
  column with few distinct values gets fewer bins. A value ``x`` falls in bin
  ``searchsorted(edges, x, side="right")``: bins are ``[edge_i, edge_i+1)``, the first and
  last are open-ended, so current values outside the reference's range still count.
  NaN and infinities are ignored on both sides.
- **Categories** (:func:`psi_categorical`): each distinct value is a bin (``None``, a
  null, is a value like any other); the bins are the union of both sides' categories, a
  category absent from one side counting zero there (then floored at ``eps``).

KS
--
:func:`ks_test` is SciPy's two-sample Kolmogorov-Smirnov test (``ks_2samp``, default
``method="auto"``: exact p-values for small samples, asymptotic for large), NaN and
infinities ignored. The statistic is the largest gap between the two empirical CDFs
(0 to 1); the p-value is the chance of a gap at least that large if both samples came
from one distribution. Numbers only.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "PSI_EPS",
    "KsResult",
    "align_counts",
    "bin_counts",
    "ks_test",
    "psi",
    "psi_bins",
    "psi_categorical",
    "psi_from_samples",
]

FloatArray = npt.NDArray[np.float64]
K = TypeVar("K", bound=Hashable)

#: The floor for a bin's proportion in PSI (see the module docstring).
PSI_EPS = 1e-4


def psi(
    expected_counts: npt.ArrayLike, actual_counts: npt.ArrayLike, *, eps: float = PSI_EPS
) -> float:
    """PSI between two count (or proportion) vectors over the same bins, in the same
    order; each side's proportions floored at ``eps`` and renormalised.

    Raises:
        ValueError: vectors of different lengths or empty, a negative count, or a side
            with no observations.
    """
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
    """Inner bin edges at the reference's quantiles ``1/n_bins ... (n_bins-1)/n_bins``
    (NaN and infinities ignored, duplicate edges removed; none for an empty reference).

    Values are binned with :func:`bin_counts`, giving ``len(edges) + 1`` bins, the outer
    two open-ended.
    """
    if n_bins < 2:
        raise ValueError(f"PSI needs at least 2 bins, got {n_bins}")
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.array([], dtype=np.float64)
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    return np.unique(np.quantile(ref, qs))


def bin_counts(values: npt.ArrayLike, edges: FloatArray) -> FloatArray:
    """How many finite ``values`` fall in each of the ``len(edges) + 1`` bins that the
    inner ``edges`` make (``[edge_i, edge_i+1)``, outer bins open-ended)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    idx = np.searchsorted(edges, v, side="right")
    return np.bincount(idx, minlength=edges.size + 1).astype(np.float64)


def psi_from_samples(
    reference: npt.ArrayLike, current: npt.ArrayLike, n_bins: int = 10, *, eps: float = PSI_EPS
) -> float:
    """PSI of ``current`` against ``reference``, binned at the reference's quantiles
    (:func:`psi_bins`)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    edges = psi_bins(ref, n_bins)
    return psi(bin_counts(ref, edges), bin_counts(cur, edges), eps=eps)


def align_counts(
    reference: Mapping[K, float], current: Mapping[K, float]
) -> tuple[list[K], FloatArray, FloatArray]:
    """The union of both sides' categories (the reference's first, in its order, then
    the current side's new ones) and each side's counts over them (0 where absent)."""
    keys = list(reference)
    keys += [k for k in current if k not in reference]
    ref = np.array([float(reference.get(k, 0)) for k in keys], dtype=np.float64)
    cur = np.array([float(current.get(k, 0)) for k in keys], dtype=np.float64)
    return keys, ref, cur


def psi_categorical(
    reference: Mapping[K, float], current: Mapping[K, float], *, eps: float = PSI_EPS
) -> float:
    """PSI between two category -> count mappings; each category one bin (see
    :func:`align_counts`)."""
    _, ref, cur = align_counts(reference, current)
    if ref.size == 0:
        raise ValueError("PSI needs at least one observation on each side")
    return psi(ref, cur, eps=eps)


@dataclass(frozen=True)
class KsResult:
    """Two-sample Kolmogorov-Smirnov test: the statistic (max CDF gap) and p-value."""

    statistic: float
    pvalue: float


def ks_test(reference: npt.ArrayLike, current: npt.ArrayLike) -> KsResult:
    """Two-sample KS test (SciPy's ``ks_2samp``), ignoring NaN and infinities.

    Raises:
        ValueError: a side has no finite value.
    """
    from scipy.stats import ks_2samp

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        raise ValueError("the KS test needs at least one value on each side")
    result = ks_2samp(ref, cur)
    return KsResult(float(result.statistic), float(result.pvalue))
