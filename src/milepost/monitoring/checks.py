"""The measurements behind a monitor's checks: pure functions over logged rows.

Each function takes the window's logged rows (a pandas DataFrame of the prediction log's
columns, ``ok`` rows only) and what to compare them with, and returns
:class:`Measurement` rows; :class:`~milepost.monitoring.service.MonitorService` stores them
as results and raises alerts for the breached ones.

- :func:`drift_measurements`: :func:`~milepost.monitoring.drift` as one row per feature
  and method (``feature_drift`` on the logged ``features`` JSON, ``prediction_drift`` on
  the ``prediction`` column), plus a ``drifted_share`` row (drifted features per compared
  feature, with the dataset verdict in its details).
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

#: Drift statuses that mean the two sides' columns do not match (never drift).
SCHEMA_STATUSES = ("missing_in_current", "new_in_current", "type_mismatch", "no_method")

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

__all__ = [
    "Measurement",
    "crossed",
    "drift_measurements",
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
    #: the drift result behind a ``drifted_share`` row (for the report; not stored)
    result: Any = field(default=None, repr=False, compare=False)


def crossed(metric: str, value: float | None, threshold: float | None) -> bool:
    """Whether ``value`` crosses ``threshold`` in ``metric``'s direction (see METRICS)."""
    if value is None or threshold is None or math.isnan(value):
        return False
    direction = METRICS[metric][0]
    return value >= threshold if direction == "above" else value < threshold


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
    import orjson
    import pandas as pd

    records = [orjson.loads(text) if text else {} for text in log["features"]]
    return pd.DataFrame.from_records(records)


def predictions_frame(log: pd.DataFrame) -> pd.DataFrame:
    """The logged predictions (``prediction`` JSON) as one column ``prediction``."""
    import pandas as pd

    values = [json.loads(text) if text is not None else None for text in log["prediction"]]
    return pd.DataFrame({"prediction": values})


def drift_measurements(
    check: str,
    reference: Any,
    current: pd.DataFrame,
    thresholds: Mapping[str, float],
    *,
    details: dict[str, Any] | None = None,
) -> list[Measurement]:
    """Per-feature drift of ``current`` against ``reference`` (a DataFrame, or a stored
    :class:`~milepost.monitoring.Profile`) by :func:`~milepost.monitoring.drift`.

    Every drift method runs; those named in ``thresholds`` with those thresholds, the
    others with their defaults. A row is breached when it drifted and either
    counts for its feature's kind (``wasserstein`` for numbers, ``psi`` for categories)
    and the monitor names no threshold for that kind's methods, or its method has a
    threshold in the monitor; other
    drifted rows are information (``details["drifted"]``). Values are the statistic of
    distances and the p-value of tests (``ks``, ``chi_square``). Features the reference
    has and the window does not (a profile's label column) are left out and named in the
    ``drifted_share`` row's ``details["not_logged"]``; logged columns a stored profile
    does not have (the entity key the server read features by) are not compared and are
    named in ``details["not_in_reference"]``.
    """
    from milepost.monitoring._drift_options import METHODS as KIND_METHODS
    from milepost.monitoring.feature_drift import drift
    from milepost.monitoring.profiles import Profile

    extra = details or {}
    not_logged: list[str] = []
    not_in_reference: list[str] = []
    if isinstance(reference, Profile):
        not_logged = [c for c in reference.columns if c not in current.columns]
        kept = {c: p for c, p in reference.columns.items() if c in current.columns}
        reference = Profile(rows=reference.rows, columns=kept)
        # what the log has and the training data did not (the entity key the server
        # looked features up by): not an input of the model, so not compared
        not_in_reference = [c for c in current.columns if c not in kept]
        current = current[[c for c in current.columns if c in kept]]
    limits = {m: thresholds[m] for m in DRIFT_METHODS if m in thresholds}
    result = drift(reference, current, thresholds=limits or None)
    rows = len(current)
    out: list[Measurement] = []
    for r in result.features.to_dict("records"):
        method = str(r["method"])
        if method not in METRICS:
            continue
        raw = r.get("p_value") if METRICS[method][0] == "below" else r.get("statistic")
        value = None if raw is None or math.isnan(float(raw)) else float(raw)
        limit = r.get("threshold")
        limit = None if limit is None or math.isnan(float(limit)) else float(limit)
        drifted = bool(r.get("drifted"))
        # a threshold the monitor names for this kind's methods replaces the counted one
        named = any(m in thresholds for m in KIND_METHODS.get(str(r.get("kind")), ()))
        hit = drifted and (method in thresholds or (bool(r.get("counted")) and not named))
        status = "breached" if hit else "ok"
        if r.get("status") in ("empty", "all_null") and not hit:
            status = "empty"
        elif r.get("status") in SCHEMA_STATUSES:
            status = "error"
        info = {**extra, "kind": r.get("kind"), "status": r.get("status")}
        if r.get("detail"):
            info["detail"] = r["detail"]
        if drifted and not hit:
            info["drifted"] = "yes (information: not the counted method)"
        out.append(
            Measurement(check, method, str(r["feature"]), value, limit, hit, rows, status, info)
        )
    share = {**extra, "drifted": list(result.drifted_features), "features": result.compared}
    share["dataset_drift"] = bool(result.dataset_drift)
    if not_logged:
        share["not_logged"] = not_logged
    if not_in_reference:
        share["not_in_reference"] = not_in_reference
    if result.unseen_categories:
        share["unseen_categories"] = {k: list(v) for k, v in result.unseen_categories.items()}
    summary = _measure(check, "drifted_share", None, result.drifted_share, thresholds, rows, share)
    out.append(replace(summary, result=result))
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
    (``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro``, and ``roc_auc``
    and ``log_loss`` when the log holds class probabilities; ``mae``, ``rmse``, ``r2``);
    ``labelled_share`` carries the labelled and unlabelled counts. With probabilities,
    ``estimated_accuracy`` and ``estimated_roc_auc`` cover every prediction of the window,
    labelled or not (confidence-based; ``details["valid"]`` says whether the calibration
    check on the labelled rows passed). With no label
    yet, only ``labelled_share`` is measured, with status ``no_reference``.
    """
    from milepost.monitoring.performance import realised_performance

    preds = predictions_frame(log)["prediction"].tolist()
    keys = zip(log["request_id"].tolist(), log["row"].astype(int).tolist(), strict=True)
    truth = [labels.get(k) for k in keys]
    pairs = [(p, y) for p, y in zip(preds, truth, strict=True) if y is not None]
    classes = all(_is_class(p) and _is_class(y) for p, y in pairs)
    order, proba = _probabilities(log) if classes else (None, None)
    perf = realised_performance(
        preds,
        truth,
        task="classification" if classes else "regression",
        probabilities=proba,
        classes=order,
    )
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
    if proba is not None and order is not None:
        out.extend(_estimated(proba, truth, order, thresholds))
    return out


def _probabilities(log: pd.DataFrame) -> tuple[list[Any] | None, list[list[float]] | None]:
    """The window's logged class probabilities, one row per prediction, in one class
    order; ``(None, None)`` unless every row logged them for the same classes."""
    from milepost.monitoring.labels import logged_probabilities

    if "probabilities" not in log.columns:
        return None, None
    texts = [v if isinstance(v, str) else None for v in log["probabilities"].tolist()]
    if not any(texts):
        return None, None
    order, rows = logged_probabilities(texts)
    if order is None or any(r is None for r in rows):
        return None, None
    return order, [r for r in rows if r is not None]


def _estimated(
    proba: list[list[float]],
    truth: list[Any],
    classes: list[Any],
    thresholds: Mapping[str, float],
) -> list[Measurement]:
    """Confidence-based estimates over the whole window (labelled or not), checked for
    calibration on the window's labelled rows: ``estimated_accuracy`` and
    ``estimated_roc_auc``, with ``valid`` and the reason in their details."""
    from milepost.monitoring.estimation import check_calibration, estimate_performance

    labelled = [i for i, y in enumerate(truth) if y is not None]
    calibration = (
        check_calibration(
            [proba[i] for i in labelled], [truth[i] for i in labelled], classes=classes
        )
        if labelled
        else None
    )
    estimate = estimate_performance(proba, classes=classes, calibration=calibration)
    details = {"valid": estimate.valid, "reason": estimate.reason, "labelled": len(labelled)}
    out = []
    for metric, value in (
        ("estimated_accuracy", estimate.accuracy),
        ("estimated_roc_auc", estimate.roc_auc),
    ):
        if value is not None:
            out.append(
                _measure("performance", metric, None, value, thresholds, estimate.rows, details)
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
