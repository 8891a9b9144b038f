"""Data drift: compare a current window with a reference, per feature and per method.

::

    from milepost.monitoring import drift, profile

    result = drift(train_df, serving_df)            # exact statistics
    result = drift(profile(train_df), serving_df)   # from a stored profile
    result.features      # one row per feature and method
    result.dataset_drift, result.summary()

Methods (see :mod:`milepost.monitoring.stats` for each definition) and default thresholds:

============== =========== ============================== ===========================
method         kinds       drifted when                   default threshold
============== =========== ============================== ===========================
psi            both        statistic >= threshold         0.1
ks             numeric     p_value < threshold            0.05
wasserstein    numeric     statistic >= threshold         0.1 (reference std units)
jensen_shannon both        statistic >= threshold         0.1 (distance, base 2)
chi_square     categorical p_value < threshold            0.05
============== =========== ============================== ===========================

- PSI 0.1: the usual "moderate shift" line (< 0.1 stable, 0.1-0.25 moderate, > 0.25
  major). A category whose share moves 10 points scores about 0.1; at 0.2 the benchmark's
  such column went unflagged. With no drift, PSI over k bins is about
  ``(k - 1) * (1/n + 1/m)``: 0.002 on 10 bins at 10,000 rows a side; for many
  categories on few rows (50 categories, 1,000 rows a side: ~0.1) raise it.
- Wasserstein 0.1: a mean shift of 0.1 standard deviations, the smallest shift worth a
  look for most features. With no drift the statistic shrinks like ``1/sqrt(n)``:
  measured on normal data, about 0.02 at 10,000 rows a side (0 alarms in 90 trials, the
  largest 0.04), 0.06 at 1,000 (3.5% alarms), 0.11 at 300 (44%): below ~1,000 rows a
  side raise the threshold or count KS instead (``primary={"numeric": "ks"}``).
- Jensen-Shannon 0.1: with no drift the distance on 10 bins is about 0.02 at 10,000 rows
  a side (``sqrt(9 / (8 ln 2) * (1/n + 1/m))``; measured 0.019, the largest of 90
  trials 0.031); 0.1 is reached by a mean shift of about 0.25 standard deviations, or by
  categories moving ~10 points (50/30/20% to 40/40/20%).
- The hypothesis tests (KS, chi-square) hold their 5% false-alarm rate at any size, but
  at large sizes they flag shifts too small to matter; the distances do not grow with
  the sample. Hence the counted methods below.

**Which methods count.** A feature is *drifted* when one of its *counted* rows is:
by default one primary method per kind, ``wasserstein`` for numbers and ``psi`` for
categories (``primary=`` changes them; when ``methods=`` leaves a kind's primary out,
the first requested method for that kind counts). The other rows are information.
``drifted_share`` is drifted features / compared features (those with status ``ok``,
``constant`` or ``all_null``). ``dataset_drift`` is True when that share reaches
``drift_share`` (default 0.5) **or** any drifted feature's ``importance`` is at least
``importance_threshold`` (default 0.1: 10% of the importance when importances sum to 1),
so an important feature cannot drift unseen behind many quiet ones. **With no
``importance`` given every feature counts as important**: any drifted feature makes
dataset drift (the share is still reported). Pass importances (e.g. the model's) to let
features that matter little drift without turning the verdict.

**Statuses** (the ``status`` column; ``detail`` says it in words). Statistics skip
nulls; the null shares are columns of their own.

- ``ok``; ``constant``: the reference has one value (numbers: standard deviation 0, the
  Wasserstein distance is then scaled by the current side's standard deviation, or 1);
  statistics are computed;
- ``all_null``: a side has rows but no non-null value; drifted when the other side has
  values (a feature that stopped arriving, or started), statistic NaN;
- ``empty``: a side has no rows; nothing to compare, not drifted;
- ``missing_in_current`` / ``new_in_current``: the column is on one side only;
- ``type_mismatch``: numbers in the reference, values that are not numbers now;
- ``no_method``: ``methods=`` names no method for this feature's kind.

Schema statuses (the last four) are never counted as drift; :meth:`DriftResult.summary`
names them.

**Exact and approximate.** With a DataFrame reference every statistic is exact. With a
:class:`~milepost.monitoring.profiles.Profile` PSI, Jensen-Shannon and chi-square are exact
(while categories fit the profile's cap; beyond it the rare ones are pooled as
``"__other__"`` and current values outside the kept list count there); KS compares the
current sample with the reference CDF rebuilt from the stored 1,001 quantiles (statistic
within ~0.001, p-value asymptotic with the reference's row count); Wasserstein integrates
the gap between the two quantile functions on that grid. The ``detail`` column says
"approximate" on those rows.

**Unseen categories**: values in the current window that the reference never had (or,
for a capped reference, not among its kept categories) are listed per feature in
``unseen_categories`` and counted as their own bins (or in ``"__other__"``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from milepost.errors import InvalidInput
from milepost.monitoring import stats
from milepost.monitoring._drift_options import (
    ALL_METHODS,
    DEFAULT_THRESHOLDS,
    METHODS,
    PRIMARY,
    TESTS,
    check_counted,
    check_fraction,
    check_importance,
    check_known,
    check_methods,
    check_thresholds,
    column_names,
)
from milepost.monitoring._drift_result import COMPARED, DriftResult
from milepost.monitoring.profiles import (
    _PROBS,
    OTHER,
    ColumnProfile,
    Profile,
    as_frame,
    cap_categories,
    category_counts,
    column_kind,
    numeric_profile,
    numeric_values,
    profile_column,
    sorted_bin_counts,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "PRIMARY",
    "DriftResult",
    "drift",
]

FloatArray = npt.NDArray[np.float64]

#: Methods per kind, in the order rows appear.
_COLUMNS = [
    "feature",
    "kind",
    "method",
    "statistic",
    "p_value",
    "threshold",
    "drifted",
    "status",
    "detail",
    "counted",
    "reference_null_share",
    "current_null_share",
]
_UNSEEN_LISTED = 100


def drift(
    reference: Any,
    current: Any,
    *,
    categorical: Iterable[str] | None = None,
    methods: Sequence[str] | None = None,
    thresholds: Mapping[str, float | Mapping[str, float]] | None = None,
    importance: Mapping[str, float] | None = None,
    importance_threshold: float = 0.1,
    drift_share: float = 0.5,
    primary: Mapping[str, str] | None = None,
) -> DriftResult:
    """Compare ``current`` with ``reference`` feature by feature (see the module docstring).

    Args:
        reference: a DataFrame (exact statistics) or a stored :class:`Profile`.
        current: a DataFrame (or anything with ``to_pandas()``).
        categorical: columns to treat as categories whatever their dtype (with a Profile
            reference, the profile's kinds already hold and this applies to new columns).
        methods: which methods to run (default: every method for each kind); each runs on
            the kinds it applies to.
        thresholds: ``{"psi": 0.1}`` sets a method's threshold for every feature;
            ``{"age": {"ks": 0.01}}`` one feature's. p-value thresholds are in (0, 1).
        importance: feature -> importance, for the verdict.
        importance_threshold: a drifted feature with at least this importance means
            dataset drift.
        drift_share: the share of drifted features that means dataset drift, in (0, 1].
        primary: kind -> the method counted for ``drifted_share`` (``{"numeric": "ks"}``).

    Raises:
        InvalidInput: not DataFrames, an unknown method or feature in the options, or a
            threshold or share out of range.
    """
    cur_df = as_frame(current, "current")
    wanted = check_methods(methods)
    counted = check_counted(primary, wanted)
    limits = check_thresholds(thresholds)
    weights = check_importance(importance)
    check_fraction(drift_share, "drift_share")
    if not math.isfinite(importance_threshold):
        raise InvalidInput("importance_threshold must be a finite number.")

    ref_df = None
    if isinstance(reference, Profile):
        ref_rows, ref_names = reference.rows, list(reference.columns)
        forced = set(column_names(categorical))
        check_known(forced, set(ref_names) | set(cur_df.columns))
        forced -= set(ref_names)
    else:
        ref_df = as_frame(reference, "reference")
        ref_rows, ref_names = len(ref_df), list(ref_df.columns)
        forced = set(column_names(categorical))
        check_known(forced, set(ref_names) | set(cur_df.columns))

    unknown = set(weights) - set(ref_names) - set(cur_df.columns)
    if unknown:
        raise InvalidInput(
            f"importance names features in neither side: {', '.join(sorted(unknown))}.",
            hint="Pass importances for the monitored features only.",
        )
    ctx = _Context(wanted, counted, limits, exact=ref_df is not None)
    ref_cols: dict[str, ColumnProfile] = {}
    cur_cols: dict[str, ColumnProfile] = {}
    for name in ref_names:  # one column at a time: its sorted copies are freed after it
        ref_sorted = None
        if ref_df is None:
            rp = reference.columns[name]
        else:
            kind = column_kind(ref_df[name], forced=name in forced)
            rp, ref_sorted = profile_column(ref_df[name], kind)
        ref_cols[name] = rp
        if name not in cur_df.columns:
            ctx.unavailable(name, rp.kind, "missing_in_current", _null_share(rp, ref_rows))
            continue
        cur_cols[name] = ctx.compare(rp, ref_rows, ref_sorted, cur_df[name], len(cur_df))
    ref_prof = Profile(rows=ref_rows, columns=ref_cols)
    for name in cur_df.columns:
        if name in ref_prof.columns:
            continue
        kind = column_kind(cur_df[name], forced=name in forced)
        cur_cols[name] = profile_column(cur_df[name], kind)[0]
        ctx.unavailable(
            name, kind, "new_in_current", None, _null_share(cur_cols[name], len(cur_df))
        )
    return ctx.result(
        ref_prof,
        Profile(rows=len(cur_df), columns=cur_cols),
        weights,
        importance_threshold,
        drift_share,
    )


class _Context:
    """Builds the rows of one drift call."""

    def __init__(
        self,
        wanted: list[str],
        counted: dict[str, str],
        limits: dict[tuple[str | None, str], float],
        exact: bool,
    ) -> None:
        self.wanted, self.counted, self.limits, self.exact = wanted, counted, limits, exact
        self.rows: list[dict[str, Any]] = []
        self.unseen: dict[str, list[str]] = {}

    def threshold(self, feature: str, method: str) -> float:
        return self.limits.get((feature, method), self.limits[(None, method)])

    def methods_for(self, kind: str) -> list[str]:
        return [m for m in self.wanted if m in METHODS[kind]]

    def add(
        self,
        feature: str,
        kind: str,
        method: str,
        status: str,
        detail: str,
        nulls: tuple[float | None, float | None],
        statistic: float = math.nan,
        p_value: float = math.nan,
        drifted: bool | None = None,
    ) -> None:
        threshold = self.threshold(feature, method) if method in ALL_METHODS else math.nan
        if drifted is None:
            drifted = bool(p_value < threshold) if method in TESTS else bool(statistic >= threshold)
        self.rows.append(
            {
                "feature": feature,
                "kind": kind,
                "method": method,
                "statistic": statistic,
                "p_value": p_value,
                "threshold": threshold,
                "drifted": drifted,
                "status": status,
                "detail": detail,
                "counted": self.counted.get(kind) == method,
                "reference_null_share": math.nan if nulls[0] is None else nulls[0],
                "current_null_share": math.nan if nulls[1] is None else nulls[1],
            }
        )

    def unavailable(
        self,
        name: str,
        kind: str,
        status: str,
        ref_nulls: float | None,
        cur_nulls: float | None = None,
        detail: str | None = None,
        drifted: bool = False,
    ) -> None:
        texts = {
            "missing_in_current": "the reference has this column, the current data does not",
            "new_in_current": "the current data has this column, the reference does not",
        }
        texts["no_method"] = (
            f"no requested method ({', '.join(self.wanted)}) applies to a {kind} feature; "
            f"add one of {', '.join(METHODS[kind])}"
        )
        methods = self.methods_for(kind)
        if not methods:
            methods = ["none"]
            status = status if status in texts else "no_method"
        for method in methods:
            self.add(
                name,
                kind,
                method,
                status,
                detail or texts[status],
                (ref_nulls, cur_nulls),
                drifted=drifted,
            )

    def compare(
        self,
        rp: ColumnProfile,
        ref_rows: int,
        ref_sorted: FloatArray | None,
        series: Any,
        cur_rows: int,
    ) -> ColumnProfile:
        """Rows for one feature on both sides; returns the current side's profile."""
        name, kind = rp.name, rp.kind
        ref_null = _null_share(rp, ref_rows)
        cur_sorted: FloatArray | None = None
        cur_cats: dict[str, float] = {}
        if kind == "numeric":
            values = numeric_values(series)
            if values is None:
                cats = cap_categories(category_counts(series))
                count = int(sum(cats.values()))
                cp = ColumnProfile(name, "categorical", count, cur_rows - count, categories=cats)
                self.unavailable(
                    name,
                    kind,
                    "type_mismatch",
                    ref_null,
                    _null_share(cp, cur_rows),
                    detail=f"the reference holds numbers, the current data {series.dtype} "
                    "values that are not numbers",
                )
                return cp
            cur_sorted = np.sort(values[np.isfinite(values)])
            cp = numeric_profile(name, cur_rows, cur_sorted)
        else:
            cur_cats = category_counts(series)
            capped = cap_categories(cur_cats)
            count = int(sum(capped.values()))
            cp = ColumnProfile(name, kind, count, cur_rows - count, categories=capped)
        nulls = (ref_null, _null_share(cp, cur_rows))
        if not self.methods_for(kind):
            self.unavailable(name, kind, "no_method", *nulls)
            return cp
        if ref_rows == 0 or cur_rows == 0:
            side = "reference" if ref_rows == 0 else "current window"
            self.unavailable(
                name, kind, "empty", *nulls, detail=f"the {side} has no rows: nothing to compare"
            )
            return cp
        if rp.count == 0 or cp.count == 0:
            both = rp.count == 0 and cp.count == 0
            which = "both sides" if both else ("reference" if rp.count == 0 else "current window")
            self.unavailable(
                name,
                kind,
                "all_null",
                *nulls,
                detail=f"the {which} has only nulls"
                + ("" if both else ": the feature's null share changed to or from 100%"),
                drifted=not both,
            )
            return cp
        if kind == "numeric":
            assert cur_sorted is not None
            self._numeric(rp, ref_sorted, cp, cur_sorted, nulls)
        else:
            self._categorical(rp, cur_cats, nulls)
        return cp

    def _numeric(
        self,
        rp: ColumnProfile,
        ref_sorted: FloatArray | None,
        cp: ColumnProfile,
        cur: FloatArray,
        nulls: tuple[float | None, float | None],
    ) -> None:
        name = rp.name
        constant = (rp.std or 0.0) == 0.0
        status = "constant" if constant else "ok"
        base = f"the reference is constant ({rp.min:g})" if constant else ""
        approx = "approximate: from the stored profile's quantiles"
        methods = self.methods_for("numeric")
        gap: tuple[FloatArray, FloatArray] | None = None
        if ref_sorted is not None and ({"ks", "wasserstein"} & set(methods)):
            gap = stats.cdf_gap(ref_sorted, cur)
        edges = np.asarray(rp.edges, dtype=np.float64)
        ref_counts = np.asarray(rp.counts, dtype=np.float64)
        cur_counts = sorted_bin_counts(cur, edges)
        for method in methods:
            detail, p = base, math.nan
            if method == "psi":
                value = stats.psi(ref_counts, cur_counts)
            elif method == "jensen_shannon":
                value = stats.jensen_shannon(ref_counts, cur_counts)
            elif method == "ks":
                if gap is not None and ref_sorted is not None:
                    ks = stats.ks_from_gap(*gap, ref_sorted, cur)
                    value, p = ks.statistic, ks.pvalue
                else:
                    value = stats.ks_from_quantiles(np.asarray(rp.quantiles), cur)
                    p = stats.ks_pvalue(value, rp.count, cur.size)
                    detail = _join(detail, approx)
            else:  # wasserstein
                scale = stats.wasserstein_scale(rp.std or 0.0, cp.std or 0.0)
                if gap is not None:
                    raw = stats.wasserstein_from_gap(*gap)
                else:
                    q_cur = stats.sorted_quantiles(cur, _PROBS)
                    raw = float(np.trapezoid(np.abs(np.asarray(rp.quantiles) - q_cur), _PROBS))
                    detail = _join(detail, approx)
                value = raw / scale
                if constant:
                    unit = "the current std" if (cp.std or 0.0) > 0 else "1 (both constant)"
                    detail = _join(detail, f"distance divided by {unit}")
            self.add(name, "numeric", method, status, detail, nulls, value, p)

    def _categorical(
        self,
        rp: ColumnProfile,
        cur_raw: dict[str, float],
        nulls: tuple[float | None, float | None],
    ) -> None:
        name, ref = rp.name, rp.categories
        unseen = [k for k in sorted(cur_raw, key=lambda k: -cur_raw[k]) if k not in ref]
        if rp.capped:  # values outside the kept list are pooled, as in the reference
            cur: dict[str, float] = {}
            for k, v in cur_raw.items():
                key = k if k in ref else OTHER
                cur[key] = cur.get(key, 0.0) + v
        else:
            cur = cur_raw
        detail = ""
        real_ref = [k for k in ref if k != OTHER]
        if len(real_ref) == 1 and not rp.capped:
            detail = f"the reference has one category ({real_ref[0]})"
        if unseen:
            self.unseen[name] = unseen[:_UNSEEN_LISTED]
            share = sum(cur_raw[k] for k in unseen) / max(sum(cur_raw.values()), 1.0)
            shown = ", ".join(unseen[:5]) + (", ..." if len(unseen) > 5 else "")
            where = (
                " (pooled in __other__: the reference kept its top categories)" if rp.capped else ""
            )
            detail = _join(
                detail,
                f"{len(unseen)} {'category' if len(unseen) == 1 else 'categories'} unseen "
                f"in the reference, {share:.1%} of current: "
                f"{shown}{where}",
            )
        status = "constant" if len(real_ref) == 1 and not rp.capped else "ok"
        for method in self.methods_for("categorical"):
            p = math.nan
            if method == "psi":
                value = stats.psi_categorical(ref, cur)
            elif method == "jensen_shannon":
                value = stats.js_categorical(ref, cur)
            else:
                chi = stats.chi_square(ref, cur)
                value, p = chi.statistic, chi.pvalue
            self.add(name, "categorical", method, status, detail, nulls, value, p)

    def result(
        self,
        ref: Profile,
        cur: Profile,
        weights: dict[str, float],
        importance_threshold: float,
        drift_share: float,
    ) -> DriftResult:
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=_COLUMNS)
        statuses = dict(zip(frame["feature"], frame["status"], strict=False))
        compared = [f for f, s in statuses.items() if s in COMPARED]
        hits = frame[frame["counted"] & frame["drifted"]]["feature"]
        drifted = [f for f in compared if f in set(hits)]
        share = len(drifted) / len(compared) if compared else 0.0
        if weights:
            important = [f for f in drifted if weights.get(f, -math.inf) >= importance_threshold]
        else:  # no importances given: every feature matters (see the module docstring)
            important = list(drifted)
        return DriftResult(
            features=frame,
            drifted_share=share,
            dataset_drift=bool((compared and share >= drift_share) or important),
            drift_share=drift_share,
            importance_threshold=importance_threshold,
            compared=len(compared),
            drifted_features=drifted,
            important_drifted=important,
            unseen_categories=self.unseen,
            counted=self.counted,
            reference=ref,
            current=cur,
            exact=self.exact,
        )


def _null_share(p: ColumnProfile, rows: int) -> float | None:
    return p.nulls / rows if rows else None


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b
