"""Time series and extras of the monitoring report: drift history, performance, alerts
and the domain classifier's verdict, as JSON-ready points (see
:mod:`milepost.monitoring.report`).

Accepted shapes: plain points (mappings or a DataFrame), ``performance_over_time``'s
window table, and a monitor's stored results (records with ``to_dict()`` or dicts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from milepost.errors import InvalidInput
from milepost.monitoring._report_content import (
    Points,
    iso,
    parse_time,
    plain,
    records,
    thin,
)

__all__ = [
    "P_VALUE_METRICS",
    "alert_rows",
    "history_points",
    "multivariate_summary",
    "performance_points",
]


#: Monitor metrics whose value is a p-value (drift below the threshold).
P_VALUE_METRICS = frozenset({"ks", "chi_square"})


def _monitor_rows(points: Points, what: str) -> Points:
    """Monitor results (``run_at, check, metric, feature, value, threshold``, as
    ``milepost monitor`` stores them) as history or performance points; other points
    pass through. Performance results go to ``performance``, the rest to ``history``;
    results that measured nothing (no value) are left out."""
    if points is None or hasattr(points, "columns") or not isinstance(points, list | tuple):
        return points
    first: Any = points[0] if points else None
    row = first.to_dict() if hasattr(first, "to_dict") else first
    if not (isinstance(row, Mapping) and {"run_at", "check", "metric", "value"} <= set(row)):
        return points
    out = []
    for item in records(points, what, ("run_at", "check", "metric", "value")):
        if plain(item["value"]) is None or (item["check"] == "performance") != (
            what == "performance"
        ):
            continue
        metric, value = str(item["metric"]), item["value"]
        point = {"time": item["run_at"], "threshold": item.get("threshold")}
        if what == "performance":
            out.append({**point, "metric": metric, "value": value})
            continue
        tested = metric in P_VALUE_METRICS
        feature = item.get("feature") or ("dataset" if metric == "drifted_share" else item["check"])
        out.append(
            {
                **point,
                "feature": feature,
                "method": metric,
                "statistic": None if tested else value,
                "p_value": value if tested else None,
            }
        )
    return out


def history_points(points: Points) -> list[dict[str, Any]]:
    points = _monitor_rows(points, "history")
    rows = records(points, "history", ("time", "feature", "method", "statistic"))
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        point = {
            "time_ms": parse_time(row["time"], f"history[{i}]"),
            "feature": str(row["feature"]),
            "method": str(row["method"]),
            "statistic": plain(row["statistic"]),
            "p_value": plain(row.get("p_value")),
            "threshold": plain(row.get("threshold")),
        }
        series.setdefault((point["feature"], point["method"]), []).append(point)
    out = []
    for pts in series.values():
        for p in thin(sorted(pts, key=lambda p: p["time_ms"])):
            out.append({"time": iso(p["time_ms"]), **p})
    return out


#: Columns of a window table (``performance_over_time``) that are not metrics.
_WINDOW_META = frozenset(
    {"window_start", "window_end", "predictions", "labelled", "unlabelled", "status",
     "estimate_valid"}
)  # fmt: skip


def _from_windows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Long points from :func:`~milepost.monitoring.performance_over_time`'s table: one
    per window and metric at the window's start, ``estimated_<metric>`` as the metric's
    estimate ("estimated (not valid)" when ``estimate_valid`` is false), and the share
    of predictions labelled so far as a metric of its own."""
    out, shares = [], []
    for row in rows:
        valid = row.get("estimate_valid", True)
        for key, value in row.items():
            if key in _WINDOW_META or plain(value) is None or isinstance(value, bool | str):
                continue
            point = {"time": row["window_start"], "metric": str(key), "value": value}
            if str(key).startswith("estimated_"):
                point["metric"] = str(key).removeprefix("estimated_")
                point["kind"] = "estimated" if valid else "estimated (not valid)"
            if key == "share_labelled":
                point["kind"] = "labelled so far"
                shares.append(point)
            else:
                out.append(point)
    return out + shares  # the labelled share's chart after the metrics


def performance_points(points: Points) -> list[dict[str, Any]]:
    points = _monitor_rows(points, "performance")
    columns = getattr(points, "columns", ())
    if "window_start" in columns and "metric" not in columns:
        points = _from_windows(records(points, "performance", ("window_start",)))
    rows = records(points, "performance", ("time", "metric", "value"))
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        ms = parse_time(row["time"], f"performance[{i}]")
        metric = str(row["metric"])
        kind = str(row.get("kind") or "realised")
        pairs = [(kind, row["value"])]
        if row.get("estimated") is not None:
            pairs.append(("estimated", row["estimated"]))
        for k, v in pairs:
            if plain(v) is None:  # no value (yet): nothing to draw
                continue
            point = {"time_ms": ms, "metric": metric, "kind": k, "value": plain(v)}
            series.setdefault((metric, k), []).append(point)
    out = []
    for pts in series.values():
        for p in thin(sorted(pts, key=lambda p: p["time_ms"])):
            out.append({"time": iso(p["time_ms"]), **p})
    return out


#: a monitor's alert fields that are epoch milliseconds, and those a reader does not need
_ALERT_TIMES = frozenset({"time", "raised_at", "acknowledged_at"})
_ALERT_HIDDEN = frozenset({"run_id", "message", "delivery_error"})


def alert_rows(alerts: Iterable[Any] | None) -> list[dict[str, Any]]:
    if alerts is not None and (
        not isinstance(alerts, Iterable) or isinstance(alerts, str | bytes | Mapping)
    ):
        raise InvalidInput(
            f"alerts is a {type(alerts).__name__}.", hint="Pass alerts as a list of dicts."
        )
    out = []
    for alert in alerts or []:
        row = alert.to_dict() if hasattr(alert, "to_dict") else alert
        if not isinstance(row, Mapping):
            raise InvalidInput(
                f"An alert is a {type(alert).__name__}, not a mapping.",
                hint="Pass alerts as dicts or objects with to_dict().",
            )
        clean = {}
        for key, raw in row.items():
            if key in _ALERT_HIDDEN:
                continue
            time_like = key in _ALERT_TIMES or str(key).endswith("_ms")
            value = iso(float(raw)) if time_like and isinstance(raw, int | float) else raw
            if isinstance(value, float) and not time_like:
                value = float(f"{value:.4g}")
            clean[str(key)] = plain(value)
        out.append(clean)
    return out


def multivariate_summary(result: Any) -> dict[str, Any] | None:
    """The domain classifier's verdict (:func:`~milepost.monitoring.domain_classifier_drift`)
    for the summary: AUC, interval, threshold, status and the ten columns that separate
    the windows most (positive permutation importance, highest first)."""
    if result is None:
        return None
    row = result.to_dict() if hasattr(result, "to_dict") else result
    if not isinstance(row, Mapping) or "auc" not in row:
        raise InvalidInput(
            f"multivariate= got a {type(result).__name__}, not a domain classifier result.",
            hint="Pass what milepost.monitoring.domain_classifier_drift returned.",
        )
    importance = {str(k): plain(v) for k, v in (row.get("importance") or {}).items()}
    top = sorted(
        ((k, v) for k, v in importance.items() if v is not None and v > 0), key=lambda kv: -kv[1]
    )[:10]
    ci = row.get("ci")
    return {
        "auc": plain(row.get("auc")),
        "ci": None if ci is None else [plain(v) for v in ci],
        "p_value": plain(row.get("p_value")),
        "threshold": plain(row.get("threshold")),
        "alpha": plain(row.get("alpha")),
        "drifted": bool(row.get("drifted")),
        "status": plain(row.get("status")),
        "reason": plain(row.get("reason")) or "",
        "rows_reference": plain(row.get("rows_reference")),
        "rows_current": plain(row.get("rows_current")),
        "top_features": [{"feature": k, "importance": v} for k, v in top],
    }
