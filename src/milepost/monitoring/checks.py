"""The measurements behind a monitor's checks: pure functions over logged rows.

Each function takes the window's logged rows (a pandas DataFrame of the prediction log's
columns, ``ok`` rows only) and what to compare them with, and returns
:class:`Measurement` rows; :class:`~milepost.monitoring.service.MonitorService` stores them
as results and raises alerts for the breached ones.

- :func:`drift_measurements`: one row per feature and method (``feature_drift`` on the
  logged ``features`` JSON, ``prediction_drift`` on the ``prediction`` column), plus a
  ``drifted_share`` row (share of features with at least one drifted method).
- :func:`performance_measurements`: predictions joined with their labels, scored by
  :func:`~milepost.monitoring.realised_performance`, and ``labelled_share`` with the
  labelled and unlabelled counts in its details.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from milepost.monitoring.monitors import DRIFT_METHODS, METRICS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

__all__ = [
    "Measurement",
    "crossed",
    "drift_measurements",
    "drift_result_measurements",
    "empty_measurements",
    "error_measurement",
    "features_frame",
    "performance_measurements",
    "predictions_frame",
    "threshold_for",
]


@dataclass(frozen=True)
class Measurement:
    """One value a check measured, before it is stored as a result."""

    check: str
    metric: str
    feature: str | None
    value: float | None
    threshold: float | None
    breached: bool
    rows: int
    status: str
    details: dict[str, Any] = field(default_factory=dict)


def crossed(metric: str, value: float | None, threshold: float | None) -> bool:
    """Whether ``value`` crosses ``threshold`` in ``metric``'s direction (see METRICS)."""
    if value is None or threshold is None or math.isnan(value):
        return False
    direction = METRICS[metric][0]
    return value > threshold if direction == "above" else value < threshold


def threshold_for(metric: str, thresholds: Mapping[str, float]) -> float | None:
    """The monitor's threshold for ``metric``, else its default (None: informational)."""
    return thresholds.get(metric, METRICS[metric][1])


def _measure(
    check: str,
    metric: str,
    feature: str | None,
    value: float | None,
    thresholds: Mapping[str, float],
    rows: int,
    details: dict[str, Any] | None = None,
) -> Measurement:
    limit = threshold_for(metric, thresholds)
    if value is not None and math.isnan(value):
        return Measurement(
            check,
            metric,
            feature,
            None,
            limit,
            False,
            rows,
            "error",
            {**(details or {}), "error": "the statistic is undefined (NaN) for these values"},
        )
    hit = crossed(metric, value, limit)
    return Measurement(
        check, metric, feature, value, limit, hit, rows, "breached" if hit else "ok", details or {}
    )


def features_frame(log: pd.DataFrame) -> pd.DataFrame:
    """The logged feature vectors (``features`` JSON, one object per row) as columns."""
    import pandas as pd

    records = [json.loads(text) if text else {} for text in log["features"]]
    return pd.DataFrame.from_records(records)


def predictions_frame(log: pd.DataFrame) -> pd.DataFrame:
    """The logged predictions (``prediction`` JSON) as one column ``prediction``."""
    import pandas as pd

    values = [json.loads(text) if text is not None else None for text in log["prediction"]]
    return pd.DataFrame({"prediction": values})


def _is_categorical(series: pd.Series[Any]) -> bool:
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def drift_measurements(
    check: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    thresholds: Mapping[str, float],
    *,
    details: dict[str, Any] | None = None,
) -> list[Measurement]:
    """Per-feature drift of ``current`` against ``reference`` (both DataFrames), for each
    drift method named in ``thresholds`` (``psi`` when none is).

    PSI bins numbers at the reference's deciles and treats each category as a bin
    (:mod:`milepost.monitoring.stats`); ``ks`` is the two-sample KS test's p-value
    (numbers only). A feature missing from the current rows is reported with status
    ``error``; a column null on either side is skipped with its reason.
    """
    from milepost.monitoring.stats import ks_test, psi_categorical, psi_from_samples

    methods = [m for m in DRIFT_METHODS if m in thresholds] or ["psi"]
    extra = details or {}
    out: list[Measurement] = []
    drifted: set[str] = set()
    rows = len(current)
    for name in reference.columns:
        if name not in current.columns:
            out.append(
                Measurement(
                    check,
                    methods[0],
                    str(name),
                    None,
                    None,
                    False,
                    rows,
                    "error",
                    {**extra, "error": f"{name!r} is in the reference but not in the window"},
                )
            )
            continue
        ref, cur = reference[name].dropna(), current[name].dropna()
        if ref.empty or cur.empty:
            out.append(
                Measurement(
                    check,
                    methods[0],
                    str(name),
                    None,
                    None,
                    False,
                    len(cur),
                    "empty",
                    {**extra, "reason": "all values are null on one side"},
                )
            )
            continue
        categorical = _is_categorical(reference[name]) or _is_categorical(current[name])
        for method in methods:
            value: float | None
            if method == "psi":
                if categorical:
                    value = psi_categorical(
                        ref.astype(str).value_counts().to_dict(),
                        cur.astype(str).value_counts().to_dict(),
                    )
                else:
                    value = psi_from_samples(ref.to_numpy(float), cur.to_numpy(float))
            elif method == "ks" and not categorical:
                value = ks_test(ref.to_numpy(float), cur.to_numpy(float)).pvalue
            else:
                continue  # the other methods arrive with milepost.monitoring.drift
            m = _measure(check, method, str(name), value, thresholds, len(cur), {**extra})
            drifted.update([str(name)] if m.breached else [])
            out.append(m)
    measured = {m.feature for m in out if m.status in ("ok", "breached")}
    if measured:
        share = len(drifted & measured) / len(measured)
        out.append(
            _measure(
                check,
                "drifted_share",
                None,
                share,
                thresholds,
                rows,
                {**extra, "drifted": sorted(drifted), "features": len(measured)},
            )
        )
    return out


def drift_result_measurements(
    check: str, result: Any, rows: int, thresholds: Mapping[str, float]
) -> list[Measurement]:
    """Measurements from a :func:`milepost.monitoring.drift` result against a stored
    profile: the statistic of distances, the p-value of tests (``ks``, ``chi_square``),
    with the drift function's own verdict unless the monitor overrides the threshold."""
    out: list[Measurement] = []
    details = {"reference": "profile"}
    for r in result.features.to_dict("records"):
        method = str(r["method"])
        if method not in METRICS:
            continue
        test = METRICS[method][0] == "below"
        value = r.get("p_value") if test else r.get("statistic")
        value = None if value is None or math.isnan(float(value)) else float(value)
        limit = thresholds.get(method, r.get("threshold"))
        limit = None if limit is None or math.isnan(float(limit)) else float(limit)
        hit = crossed(method, value, limit) if method in thresholds else bool(r.get("drifted"))
        status = "breached" if hit else "ok"
        if value is None:
            status = str(r.get("status") or "error")
        extra = {**details, "kind": r.get("kind"), "status": r.get("status")}
        out.append(
            Measurement(check, method, str(r["feature"]), value, limit, hit, rows, status, extra)
        )
    share = float(result.drifted_share)
    out.append(
        _measure(
            check,
            "drifted_share",
            None,
            share,
            thresholds,
            rows,
            {**details, "dataset_drift": bool(result.dataset_drift)},
        )
    )
    return out


def _is_class(value: Any) -> bool:
    return isinstance(value, (str, bool, int))


def performance_measurements(
    log: pd.DataFrame, labels: Mapping[tuple[str, int], Any], thresholds: Mapping[str, float]
) -> list[Measurement]:
    """Realised performance of the window's predictions against the labels sent so far
    (``labels``: ``(request_id, row) -> label``), by
    :func:`~milepost.monitoring.realised_performance`, and how many are still unlabelled.

    The task is classification when every labelled prediction and label is a class (text,
    boolean or integer), else regression. Every metric it can compute is a result
    (``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro``; ``mae``, ``rmse``,
    ``r2``); ``labelled_share`` carries the labelled and unlabelled counts. With no label
    yet, only ``labelled_share`` is measured, with status ``no_reference``.
    """
    from milepost.monitoring.performance import realised_performance

    preds = predictions_frame(log)["prediction"].tolist()
    keys = zip(log["request_id"].tolist(), log["row"].astype(int).tolist(), strict=True)
    truth = [labels.get(k) for k in keys]
    pairs = [(p, y) for p, y in zip(preds, truth, strict=True) if y is not None]
    classes = all(_is_class(p) and _is_class(y) for p, y in pairs)
    perf = realised_performance(preds, truth, task="classification" if classes else "regression")
    counts = {
        "predictions": perf.predictions,
        "labelled": perf.labelled,
        "unlabelled": perf.unlabelled,
    }
    share = _measure(
        "performance",
        "labelled_share",
        None,
        perf.share_labelled,
        thresholds,
        perf.predictions,
        dict(counts),
    )
    if perf.status != "ok":
        reason = "; ".join(perf.notes) or "no prediction has a label yet"
        return [replace(share, status="no_reference", details={**counts, "reason": reason})]
    out = [share]
    details = {"task": perf.task, **({"notes": list(perf.notes)} if perf.notes else {})}
    for metric, value in perf.metrics.items():
        if value is not None and metric in METRICS:
            out.append(
                _measure("performance", metric, None, value, thresholds, perf.labelled, details)
            )
    return out


def error_measurement(check: str, error: BaseException, rows: int) -> Measurement:
    """A check that failed: status ``error`` with the reason; the run goes on."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    hint = getattr(error, "hint", None)
    details = {"error": message, **({"hint": hint} if hint else {})}
    return Measurement(check, "error", None, None, None, False, rows, "error", details)


def empty_measurements(checks: Sequence[str]) -> list[Measurement]:
    """No logged rows in the window: one ``empty`` result per check, nothing breached."""
    reason = {"reason": "no logged prediction in the window"}
    return [
        Measurement(c, "rows", None, 0.0, None, False, 0, "empty", dict(reason)) for c in checks
    ]
