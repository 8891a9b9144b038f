"""Performance estimation before labels arrive: confidence-based, valid only when calibrated.

A classifier's predicted probabilities say how often it expects to be right. If they are
*calibrated* (of the rows given probability 0.8 for a class, 80% are that class), the
expected value of a metric can be computed from the probabilities alone (the idea of
NannyML's CBPE, implemented here from its definition):

- **expected accuracy** = the mean over rows of the probability of the predicted class
  (the largest one): a row predicted with confidence ``c`` is right with chance ``c``;
- **expected ROC AUC**: each row counts as ``p`` of a positive and ``1 - p`` of a
  negative at score ``p`` (``p`` the positive class's probability). Sweeping the
  threshold from high to low, the expected true-positive rate at a threshold is the
  positive mass above it over all positive mass, the false-positive rate likewise with
  ``1 - p``; the area under that expected curve (trapezoids, tied scores one step) is the
  estimate. Several classes: one-vs-rest with each class's own column, unweighted mean
  over the classes with positive and negative mass.

Two assumptions make this valid: the probabilities are calibrated, and the relation
between features and label is the one of the reference (no concept drift: a change in
what the label means is invisible to any label-free estimate). The first is checked:

:func:`check_calibration` takes a **labelled reference window** (e.g. the validation set
or the first labelled week) and measures the expected calibration error (ECE: rows
sorted by score into ``bins`` equal-count bins, the row-weighted mean of
``|mean score - observed frequency|``) for the top label (what accuracy needs) and per
class (what AUC needs; their mean). Because a calibrated model still shows some ECE by
chance in a finite sample, the test simulates it: labels are redrawn from the model's own
probabilities ``simulations`` times (consistency resampling), and the p-value is the
share of draws whose ECE (the larger of the two) is at least the observed one. The model
counts as calibrated when that p-value is at least ``alpha`` (default 0.01) or both ECEs
are at most ``tolerance`` (default 0.02: too small to matter even when a large reference
makes it significant). At most ``MAX_TEST_ROWS`` rows (a seeded sample) enter the
simulation; the reported ECEs use every row.

When the model is not calibrated, :func:`estimate_performance` still returns numbers but
with ``valid=False`` and the reason. With ``calibrate=True``, :func:`check_calibration`
instead fits isotonic regression (per class, one-vs-rest; two classes: on the second
class's probability) on one random half of the reference, checks the calibrated
probabilities on the other half (so the check is not in-sample), and, if they pass,
refits on the whole reference; the estimate then calibrates the current probabilities
with it first and is valid.
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

    import numpy.typing as npt

__all__ = [
    "MAX_TEST_ROWS",
    "MIN_REFERENCE_ROWS",
    "Calibration",
    "PerformanceEstimate",
    "check_calibration",
    "estimate_performance",
    "expected_roc_auc",
]

FloatArray = Any  # npt.NDArray[np.float64]; kept loose for the lazy import of NumPy typing

#: At most this many reference rows enter the consistency-resampling test.
MAX_TEST_ROWS = 10_000
#: Fewer labelled reference rows than this cannot show calibration: not valid.
MIN_REFERENCE_ROWS = 100


@dataclass(frozen=True)
class Calibration:
    """The calibration check of a labelled reference window (see the module docstring).

    ``ece`` is the top-label ECE, ``classwise_ece`` the mean per-class ECE, both on the
    model's raw probabilities (0 is perfect); ``p_value`` the consistency-resampling
    test's; ``reliability`` the top-label bins (mean ``confidence``, observed
    ``accuracy``, ``rows``) for a reliability plot. ``method`` is ``"none"`` or
    ``"isotonic"``; with isotonic, ``ece_after`` is the top-label ECE of the calibrated
    probabilities on the held-out half.
    """

    classes: list[Any]
    rows: int
    ece: float | None
    classwise_ece: float | None
    p_value: float | None
    calibrated: bool
    reason: str
    method: str = "none"
    ece_after: float | None = None
    alpha: float = 0.01
    tolerance: float = 0.02
    reliability: list[dict[str, float]] = field(default_factory=list)
    _calibrator: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def apply(self, probabilities: FloatArray) -> FloatArray:
        """``probabilities`` calibrated with this check's isotonic fit (unchanged without)."""
        return probabilities if self._calibrator is None else self._calibrator(probabilities)


@dataclass(frozen=True)
class PerformanceEstimate:
    """Expected accuracy and ROC AUC from probabilities; trust it only when ``valid``."""

    rows: int
    accuracy: float | None
    roc_auc: float | None
    valid: bool
    reason: str
    method: str = "none"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        acc = "-" if self.accuracy is None else f"{self.accuracy:.3f}"
        auc = "-" if self.roc_auc is None else f"{self.roc_auc:.3f}"
        flag = "valid" if self.valid else "NOT valid"
        return f"PerformanceEstimate({self.rows:,} rows: accuracy {acc}, roc_auc {auc}, {flag})"


def _matrix(probabilities: npt.ArrayLike, classes: Sequence[Any]) -> FloatArray:
    """An ``(n, k)`` array of probabilities, rows normalised to sum to one."""
    if len(classes) < 2:
        raise InvalidInput(
            f"Estimation needs at least two classes, got {list(classes)}.",
            hint="Pass classes=[...] in the order of the probability columns.",
        )
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1 and len(classes) == 2:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] != len(classes):
        raise InvalidInput(
            f"Probabilities have shape {p.shape}; expected one column per class ({len(classes)}).",
            hint="Pass classes in the order of the probability columns.",
        )
    if p.size and (not np.isfinite(p).all() or (p < 0).any()):
        raise InvalidInput(
            "Probabilities must be finite and non-negative.",
            hint="Pass the model's predict_proba output.",
        )
    total = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / len(classes))
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def expected_roc_auc(scores: npt.ArrayLike) -> float | None:
    """Expected ROC AUC of calibrated positive-class probabilities (module docstring);
    ``None`` when there is no positive or no negative mass (all 0 or all 1)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not s.size:
        return None
    s = np.sort(s)[::-1]
    tp = np.cumsum(s)
    fp = np.cumsum(1.0 - s)
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp, fp = np.r_[0.0, tp[ends]], np.r_[0.0, fp[ends]]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def _expected_auc(p: FloatArray) -> float | None:
    if p.shape[1] == 2:
        return expected_roc_auc(p[:, 1])
    aucs = [a for k in range(p.shape[1]) if (a := expected_roc_auc(p[:, k])) is not None]
    return float(np.mean(aucs)) if aucs else None


def _bins(n: int, bins: int) -> FloatArray:
    return np.unique(np.linspace(0, n, min(bins, n) + 1).astype(np.int64)[:-1])


def _ece(score: FloatArray, outcome: FloatArray, bins: int) -> FloatArray:
    """ECE of ``score`` against ``outcome`` (one column per simulation, or a vector):
    sum over equal-count bins of |sum of scores - sum of outcomes|, over rows."""
    order = np.argsort(score, kind="stable")
    starts = _bins(score.size, bins)
    conf = np.add.reduceat(score[order], starts)
    obs = np.add.reduceat(outcome[order], starts, axis=0)
    if obs.ndim == 2:
        conf = conf[:, None]
    result: FloatArray = np.abs(conf - obs).sum(axis=0) / score.size
    return result


def _stats(p: FloatArray, y: FloatArray, bins: int) -> tuple[float, float]:
    """(top-label ECE, mean class-wise ECE) for labels ``y`` (class indices)."""
    top = p.argmax(axis=1)
    ece = float(_ece(p.max(axis=1), (y == top).astype(np.float64), bins))
    classwise = float(
        np.mean([_ece(p[:, k], (y == k).astype(np.float64), bins) for k in range(p.shape[1])])
    )
    return ece, classwise


def _p_value(
    p: FloatArray, observed: float, bins: int, simulations: int, rng: np.random.Generator
) -> float:
    """Share of label sets drawn from ``p`` itself whose ECE reaches ``observed``."""
    n = p.shape[0]
    upper = np.cumsum(p, axis=1)
    upper[:, -1] = 1.0
    lower = upper - p
    u = rng.random((n, simulations))
    top = p.argmax(axis=1)
    rows = np.arange(n)
    hit_top = (u >= lower[rows, top, None]) & (u < upper[rows, top, None])
    sim_top = _ece(p[rows, top], hit_top.astype(np.float64), bins)
    sim_cls = np.zeros(simulations)
    for k in range(p.shape[1]):
        hit = (u >= lower[:, k, None]) & (u < upper[:, k, None])
        sim_cls += _ece(p[:, k], hit.astype(np.float64), bins)
    sim = np.maximum(sim_top, sim_cls / p.shape[1])
    return float((1 + np.count_nonzero(sim >= observed - 1e-12)) / (1 + simulations))


def _reliability(p: FloatArray, y: FloatArray, bins: int) -> list[dict[str, float]]:
    conf = p.max(axis=1)
    correct = (y == p.argmax(axis=1)).astype(np.float64)
    order = np.argsort(conf, kind="stable")
    starts = _bins(conf.size, bins)
    sizes = np.diff(np.r_[starts, conf.size])
    c = np.add.reduceat(conf[order], starts) / sizes
    a = np.add.reduceat(correct[order], starts) / sizes
    return [
        {"confidence": float(ci), "accuracy": float(ai), "rows": int(ni)}
        for ci, ai, ni in zip(c, a, sizes, strict=True)
    ]


class _Isotonic:
    """Isotonic regression per class (two classes: on the second), rows renormalised."""

    def __init__(self, p: FloatArray, y: FloatArray) -> None:
        from sklearn.isotonic import IsotonicRegression

        self.k = p.shape[1]
        cols = [1] if self.k == 2 else list(range(self.k))
        self.fits = {
            j: IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                p[:, j], (y == j).astype(np.float64)
            )
            for j in cols
        }

    def __call__(self, p: FloatArray) -> FloatArray:
        if self.k == 2:
            p1 = np.clip(self.fits[1].predict(p[:, 1]), 0.0, 1.0)
            return np.column_stack([1.0 - p1, p1])
        out = np.column_stack([self.fits[j].predict(p[:, j]) for j in range(self.k)])
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / self.k)


def check_calibration(
    probabilities: npt.ArrayLike,
    labels: Sequence[Any] | npt.ArrayLike,
    *,
    classes: Sequence[Any],
    bins: int = 10,
    alpha: float = 0.01,
    tolerance: float = 0.02,
    simulations: int = 200,
    calibrate: bool = False,
    seed: int = 0,
) -> Calibration:
    """Whether probabilities are calibrated on a labelled reference window (module
    docstring); with ``calibrate=True``, an isotonic fit when they are not.

    Args:
        probabilities: ``(n, k)``, column ``j`` the probability of ``classes[j]`` (two
            classes: a 1-D array of the second class's probability will do).
        labels: the true class of each row; rows labelled ``None``/NaN are left out.

    Raises:
        InvalidInput: shapes that do not match, or a label that is not one of ``classes``.
    """
    p = _matrix(probabilities, classes)
    raw = list(np.asarray(labels, dtype=object).ravel())
    if len(raw) != p.shape[0]:
        raise InvalidInput(
            f"{p.shape[0]} probability rows but {len(raw)} labels.",
            hint="Pass one label per row of probabilities.",
        )
    keep = [
        i for i, v in enumerate(raw) if not (v is None or (isinstance(v, float) and math.isnan(v)))
    ]
    index = {_key(c): j for j, c in enumerate(classes)}
    unknown = sorted({str(raw[i]) for i in keep if _key(raw[i]) not in index})
    if unknown:
        raise InvalidInput(
            f"Labels {unknown[:5]} are not among the classes {list(classes)}.",
            hint="Pass classes= as the model's classes, in probability-column order.",
        )
    p = p[keep]
    y = np.asarray([index[_key(raw[i])] for i in keep], dtype=np.float64)
    n = len(keep)
    base: dict[str, Any] = {
        "classes": list(classes),
        "rows": n,
        "alpha": alpha,
        "tolerance": tolerance,
    }
    if n < MIN_REFERENCE_ROWS:
        return Calibration(
            **base,
            ece=None,
            classwise_ece=None,
            p_value=None,
            calibrated=False,
            reason=f"{n} labelled reference rows; the calibration check needs at least "
            f"{MIN_REFERENCE_ROWS}",
        )
    rng = np.random.default_rng(seed)
    ece, classwise = _stats(p, y, bins)
    pv = _test(p, y, bins, simulations, rng)
    ok = pv >= alpha or max(ece, classwise) <= tolerance
    measured = f"ECE {ece:.3f} (class-wise {classwise:.3f}, p={pv:.3g})"
    common: dict[str, Any] = {
        **base,
        "ece": ece,
        "classwise_ece": classwise,
        "p_value": pv,
        "reliability": _reliability(p, y, bins),
    }
    if ok:
        return Calibration(
            **common, calibrated=True, reason=f"calibrated on the reference: {measured}"
        )
    if not calibrate:
        return Calibration(
            **common,
            calibrated=False,
            reason=f"not calibrated on the reference: {measured}; the estimate is not "
            "valid (check_calibration(..., calibrate=True) fits isotonic regression)",
        )
    half = rng.permutation(n)
    fit, hold = half[: n // 2], half[n // 2 :]
    held = _Isotonic(p[fit], y[fit])(p[hold])
    after, after_cls = _stats(held, y[hold], bins)
    pv_after = _test(held, y[hold], bins, simulations, rng)
    passed = pv_after >= alpha or max(after, after_cls) <= tolerance
    tail = f"after isotonic regression ECE {after:.3f} on the held-out half (p={pv_after:.3g})"
    return Calibration(
        **common,
        calibrated=passed,
        method="isotonic",
        ece_after=after,
        reason=(f"{measured}; {tail}" if passed else f"{measured}; still not calibrated {tail}"),
        _calibrator=_Isotonic(p, y) if passed else None,
    )


def _test(
    p: FloatArray, y: FloatArray, bins: int, simulations: int, rng: np.random.Generator
) -> float:
    """The consistency-resampling p-value on at most ``MAX_TEST_ROWS`` rows."""
    if p.shape[0] > MAX_TEST_ROWS:
        pick = rng.choice(p.shape[0], MAX_TEST_ROWS, replace=False)
        p, y = p[pick], y[pick]
    observed = max(_stats(p, y, bins))
    return _p_value(p, observed, bins, simulations, rng)


def _key(value: Any) -> Any:
    """A class value as a dict key: numbers by value (1 == 1.0 == True), else text."""
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return float(value)
    return str(value)


def estimate_performance(
    probabilities: npt.ArrayLike,
    *,
    classes: Sequence[Any],
    calibration: Calibration | None = None,
) -> PerformanceEstimate:
    """Expected accuracy and ROC AUC of unlabelled predictions (module docstring).

    Args:
        probabilities: ``(n, k)``, column ``j`` the probability of ``classes[j]`` (two
            classes: a 1-D array of the second class's probability will do); rows are
            renormalised to sum to one.
        calibration: the check of a labelled reference window
            (:func:`check_calibration`); the estimate is ``valid`` only when it passed,
            and is computed on probabilities calibrated by its isotonic fit if it has one.

    Raises:
        InvalidInput: probabilities of the wrong shape, or classes other than the
            calibration's.
    """
    p = _matrix(probabilities, classes)
    if calibration is not None and [_key(c) for c in calibration.classes] != [
        _key(c) for c in classes
    ]:
        raise InvalidInput(
            f"The calibration was checked for classes {calibration.classes}, not {list(classes)}.",
            hint="Check calibration with the same classes, in the same order.",
        )
    method = "none" if calibration is None else calibration.method
    if not p.shape[0]:
        return PerformanceEstimate(0, None, None, False, "no predictions to estimate", method)
    if calibration is not None:
        p = calibration.apply(p)
    accuracy = float(p.max(axis=1).mean())
    auc = _expected_auc(p)
    if calibration is None:
        valid, reason = (
            False,
            "calibration not checked: pass check_calibration(...) of a labelled reference",
        )
    else:
        valid, reason = calibration.calibrated, calibration.reason
    if auc is None:
        reason += "; roc_auc undefined (every probability 0 or 1 for one class)"
    return PerformanceEstimate(int(p.shape[0]), accuracy, auc, valid, reason, method)
