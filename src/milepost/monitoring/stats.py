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
from one distribution. Numbers only. :func:`ks_sorted` computes the same statistic from
two already sorted arrays (exact p-value when both sides hold at most 10,000 values, as
SciPy's ``auto``; otherwise Smirnov's asymptotic distribution, ``kstwo`` at
``n * m / (n + m)``), and :func:`ks_pvalue` gives the asymptotic p-value for a statistic.

Wasserstein
-----------
:func:`wasserstein` is the earth mover's distance ``W1 = integral |F_ref(x) - F_cur(x)| dx``
(the mean distance each unit of probability mass moves), **divided by the reference's
standard deviation** (population, ``ddof=0``). In those units ``0.1`` is what a mean
shift of 0.1 standard deviations gives, whatever the column's unit, so one threshold
fits every numeric column. The standard deviation was chosen over the IQR because the
IQR is zero for any column with more than half its values equal (zero-inflated counts,
flags), which is common in features. A constant reference (standard deviation 0) is
normalised by the current side's standard deviation instead, and when both are constant
by 1 (the statistic is then the absolute gap between the two constants, in the column's
unit); callers report such a column with status ``constant``. Symmetric only when both
sides have the same standard deviation; zero for identical samples.

Jensen-Shannon
--------------
:func:`jensen_shannon` is the Jensen-Shannon *distance* (the square root of the
divergence) with base-2 logarithms, so it lies in ``[0, 1]``: 0 for identical
histograms, 1 for histograms with no bin in common. Symmetric and invariant to scaling
either side's counts; empty bins need no floor. Numbers are binned like PSI (the
reference's deciles, :func:`js_from_samples`); categories one bin each
(:func:`js_categorical`).

Chi-square
----------
:func:`chi_square` is Pearson's test of homogeneity on the ``2 x k`` table of the two
samples' category counts (``scipy.stats.chi2_contingency``, no Yates correction): both
samples are random, so the expected count of each cell comes from the pooled
proportions and both sides' noise is accounted for. (A goodness-of-fit test that takes
the reference's proportions as exact raises false alarms far above its nominal rate
when the reference is not much larger than the current sample.) Categories with no
observation on either side are dropped; with fewer than two categories left the two
samples cannot differ and the result is statistic 0, p-value 1, ``dof`` 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "PSI_EPS",
    "ChiSquareResult",
    "KsResult",
    "align_counts",
    "bin_counts",
    "cdf_gap",
    "chi_square",
    "jensen_shannon",
    "js_categorical",
    "js_from_samples",
    "ks_from_gap",
    "ks_from_quantiles",
    "ks_pvalue",
    "ks_sorted",
    "ks_test",
    "psi",
    "psi_bins",
    "psi_categorical",
    "psi_from_samples",
    "sorted_quantiles",
    "wasserstein",
    "wasserstein_from_gap",
    "wasserstein_scale",
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
    return np.unique(sorted_quantiles(np.sort(ref), qs))


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
    with warnings.catch_warnings():
        # with many ties the exact p-value can fail; SciPy then uses the asymptotic one
        # (what ``method="auto"`` documents), and says so in a warning users cannot act on
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        result = ks_2samp(ref, cur)
    return KsResult(float(result.statistic), float(result.pvalue))


#: Above this many values on a side, KS p-values are asymptotic (SciPy's ``auto`` rule).
KS_EXACT_MAX = 10_000


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """The asymptotic two-sided p-value of a two-sample KS ``statistic`` for samples of
    ``n`` and ``m`` values (Smirnov: ``kstwo`` at ``round(n * m / (n + m))``, as SciPy's
    ``ks_2samp(method="asymp")``)."""
    from scipy.stats import kstwo

    if n <= 0 or m <= 0:
        raise ValueError("the KS test needs at least one value on each side")
    big, small = max(n, m), min(n, m)
    en = big * small / (big + small)
    return float(np.clip(kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


def cdf_gap(reference: FloatArray, current: FloatArray) -> tuple[FloatArray, FloatArray]:
    """For two **sorted**, finite, non-empty arrays: every value of both, sorted, and
    ``F_ref - F_cur`` (right-continuous empirical CDFs) at each, exact at the last of
    each run of equal values (the only places :func:`ks_from_gap` and
    :func:`wasserstein_from_gap` read it). One linear merge and two running counts,
    shared by KS and Wasserstein."""
    both = np.concatenate([reference, current])
    order = np.argsort(both, kind="stable")  # two sorted runs: timsort merges them
    both = both[order]
    from_ref = order < reference.size
    gap = np.cumsum(from_ref) / reference.size
    gap -= np.cumsum(~from_ref) / current.size
    return both, gap


def ks_from_gap(
    both: FloatArray, gap: FloatArray, reference: FloatArray, current: FloatArray
) -> KsResult:
    """The KS result from :func:`cdf_gap`'s output (exact p-value for small samples)."""
    n, m = reference.size, current.size
    if max(n, m) <= KS_EXACT_MAX:
        return ks_test(reference, current)
    last = np.empty(both.size, dtype=bool)
    np.not_equal(both[:-1], both[1:], out=last[:-1])
    last[-1] = True
    d = float(np.max(np.abs(gap[last])))
    return KsResult(d, ks_pvalue(d, n, m))


def wasserstein_from_gap(both: FloatArray, gap: FloatArray) -> float:
    """The *unnormalised* Wasserstein distance from :func:`cdf_gap`'s output (the gap
    inside a run of equal values is multiplied by a zero width)."""
    return float(np.sum(np.abs(gap[:-1]) * np.diff(both)))


def ks_sorted(reference: FloatArray, current: FloatArray) -> KsResult:
    """Two-sample KS test of two **sorted**, finite, non-empty arrays; the same
    statistic and p-value as :func:`ks_test` without sorting again."""
    if reference.size == 0 or current.size == 0:
        raise ValueError("the KS test needs at least one value on each side")
    if max(reference.size, current.size) <= KS_EXACT_MAX:
        return ks_test(reference, current)
    return ks_from_gap(*cdf_gap(reference, current), reference, current)


def sorted_quantiles(values: FloatArray, probs: npt.ArrayLike) -> FloatArray:
    """Quantiles of a **sorted**, finite, non-empty array at ``probs`` (0..1), by linear
    interpolation, as ``np.quantile(values, probs)`` (its default ``linear`` method)
    without a partition, except that a position within rounding of a whole number
    gives exactly that sample value."""
    p = np.asarray(probs, dtype=np.float64)
    if values.size == 0:
        raise ValueError("quantiles need at least one value")
    pos = p * (values.size - 1)
    # a position within rounding of a whole number is that number: the quantile is then
    # exactly a sample value (np.quantile may land an ulp beside it, and a value equal to
    # an edge would change bins under scaling or shifting)
    whole = np.round(pos)
    pos = np.where(np.abs(pos - whole) <= 1e-9 * np.maximum(whole, 1.0), whole, pos)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, values.size - 1)
    t = pos - lo
    a, b = values[lo], values[hi]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def wasserstein(
    reference: npt.ArrayLike, current: npt.ArrayLike, *, presorted: bool = False
) -> float:
    """Wasserstein (earth mover's) distance divided by the reference's standard
    deviation (see the module docstring for the normalisation and constant columns);
    NaN and infinities ignored. ``presorted=True`` skips sorting (both must be sorted
    and finite).

    Raises:
        ValueError: a side has no finite value.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if not presorted:
        ref, cur = np.sort(ref[np.isfinite(ref)]), np.sort(cur[np.isfinite(cur)])
    if ref.size == 0 or cur.size == 0:
        raise ValueError("the Wasserstein distance needs at least one value on each side")
    raw = wasserstein_from_gap(*cdf_gap(ref, cur))
    return raw / wasserstein_scale(float(np.std(ref)), float(np.std(cur)))


def wasserstein_scale(reference_std: float, current_std: float) -> float:
    """What :func:`wasserstein` divides by: the reference's standard deviation, else the
    current side's, else 1 (both constant)."""
    if reference_std > 0:
        return reference_std
    return current_std if current_std > 0 else 1.0


def jensen_shannon(expected_counts: npt.ArrayLike, actual_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, 0..1) between two count vectors over the same
    bins, in the same order.

    Raises:
        ValueError: vectors of different lengths or empty, a negative count, or a side
            with no observations.
    """
    e = np.asarray(expected_counts, dtype=np.float64)
    a = np.asarray(actual_counts, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1 or e.size == 0:
        raise ValueError(
            f"Jensen-Shannon needs two count vectors of the same length, got {e.shape} "
            f"and {a.shape}"
        )
    if (e < 0).any() or (a < 0).any():
        raise ValueError("Jensen-Shannon counts must not be negative")
    if e.sum() == 0 or a.sum() == 0:
        raise ValueError("Jensen-Shannon needs at least one observation on each side")
    p, q = e / e.sum(), a / a.sum()
    m = (p + q) / 2
    div = 0.0
    for side in (p, q):
        nz = side > 0
        div += 0.5 * float(np.sum(side[nz] * np.log2(side[nz] / m[nz])))
    return float(np.sqrt(min(max(div, 0.0), 1.0)))


def js_from_samples(reference: npt.ArrayLike, current: npt.ArrayLike, n_bins: int = 10) -> float:
    """Jensen-Shannon distance of ``current`` against ``reference``, binned at the
    reference's quantiles like PSI (:func:`psi_bins`)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    edges = psi_bins(ref, n_bins)
    return jensen_shannon(bin_counts(ref, edges), bin_counts(cur, edges))


def js_categorical(reference: Mapping[K, float], current: Mapping[K, float]) -> float:
    """Jensen-Shannon distance between two category -> count mappings, each category one
    bin (see :func:`align_counts`)."""
    _, ref, cur = align_counts(reference, current)
    if ref.size == 0:
        raise ValueError("Jensen-Shannon needs at least one observation on each side")
    return jensen_shannon(ref, cur)


@dataclass(frozen=True)
class ChiSquareResult:
    """Chi-square test of homogeneity: Pearson's statistic, p-value, degrees of freedom."""

    statistic: float
    pvalue: float
    dof: int


def chi_square(reference: Mapping[K, float], current: Mapping[K, float]) -> ChiSquareResult:
    """Chi-square test that two category -> count mappings come from one distribution
    (the ``2 x k`` contingency table, both samples random; see the module docstring).

    Raises:
        ValueError: a negative count, or a side with no observations.
    """
    from scipy.stats import chi2_contingency

    _, ref, cur = align_counts(reference, current)
    if (ref < 0).any() or (cur < 0).any():
        raise ValueError("chi-square counts must not be negative")
    if ref.sum() == 0 or cur.sum() == 0:
        raise ValueError("the chi-square test needs at least one observation on each side")
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]])
    if table.shape[1] < 2:
        return ChiSquareResult(0.0, 1.0, 0)
    result = chi2_contingency(table, correction=False)
    return ChiSquareResult(float(result.statistic), float(result.pvalue), int(result.dof))


def ks_from_quantiles(quantiles: FloatArray, cur: FloatArray) -> float:
    """KS statistic between the CDF interpolated through a reference's quantiles
    (probabilities evenly spaced 0..1) and a sorted current sample."""
    probs = np.linspace(0.0, 1.0, quantiles.size)
    points = np.concatenate([cur, quantiles])
    f_cur_right = np.searchsorted(cur, points, side="right") / cur.size
    f_cur_left = np.searchsorted(cur, points, side="left") / cur.size
    gap = max(
        float(np.max(np.abs(_interp_cdf(quantiles, probs, points, "right") - f_cur_right))),
        float(np.max(np.abs(_interp_cdf(quantiles, probs, points, "left") - f_cur_left))),
    )
    return min(gap, 1.0)


def _interp_cdf(q: FloatArray, probs: FloatArray, x: FloatArray, side: str) -> FloatArray:
    """The reference CDF at ``x`` (right limits, or left limits for ``side="left"``),
    linear between quantile points and flat outside them."""
    i = np.searchsorted(q, x, side="right" if side == "right" else "left")
    out = np.where(i >= q.size, 1.0, 0.0)
    inner = (i > 0) & (i < q.size)
    lo, hi = i[inner] - 1, i[inner]
    span = q[hi] - q[lo]
    t = np.where(span > 0, (x[inner] - q[lo]) / np.where(span > 0, span, 1.0), 0.0)
    out[inner] = probs[lo] + t * (probs[hi] - probs[lo])
    return out
