"""The monitoring report: one self-contained HTML page and the same content as JSON.

::

    from milepost.monitoring import drift, write_report

    result = drift(reference_frame, current_frame)
    write_report("drift.html", result, history=points, performance=perf)
    # -> drift.html (open it anywhere, offline) and drift.json

What it shows, in order:

- **Summary**: the dataset verdict and why, "k of n features drifted" as the drift
  result counts them (its ``drifted_features`` over its ``compared`` features; a
  result without them counts a feature drifted when any of its rows is), features not
  compared (schema problems), how many feature x method rows flagged, and each side's
  window and row count.
- **Alerts** given in ``alerts`` (mappings or records with ``to_dict()``).
- **Per feature and method**: statistic, p-value (``-`` for distances), threshold,
  drifted, status.
- **Distributions**, reference vs current, from the two profiles only: numbers as
  densities over 40 equal-width bins spanning the 1st to 99th percentile of both sides
  (read off each profile's quantiles, so the tails beyond are left out); categories as
  each side's share of non-null values for the 10 largest categories, the rest summed
  in ``other``, and categories the reference never saw marked ``(new)``.
- **Drift over time** from ``history``: one chart per feature and method. For hypothesis
  tests (points carrying a ``p_value``) the chart shows the p-value, drift *below* the
  threshold; for distances the statistic, drift *above* it.
- **Performance over time** from ``performance``: one chart per metric, realised values
  solid and estimated ones (``kind="estimated"``, or an ``estimated`` value on the point)
  dashed.

Size does not grow with the row count: every chart is drawn from profile summaries
(quantiles, category counts) and time series are capped at 500 points per line, evenly
thinned. The page has inline CSS and inline SVG, no JavaScript and no external
reference (no CDN, no fonts, no URLs); all text is escaped.

Times (``time`` in history, performance and alerts, and window bounds) may be
datetimes (naive ones read as UTC), ISO 8601 strings or epoch milliseconds.
"""

from __future__ import annotations

import functools
import os
import tempfile
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from milepost.errors import InvalidInput
from milepost.monitoring import _report_content as c
from milepost.monitoring import _report_series as rs
from milepost.monitoring import _svg

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import jinja2
    import pandas as pd

__all__ = ["render_report", "report_json", "write_report"]

#: Columns the report needs in a drift result's ``features`` table.
REQUIRED_COLUMNS = ("feature", "kind", "method", "statistic", "p_value", "threshold", "drifted")


class ColumnProfileLike(Protocol):
    """What the report reads of a column profile (``milepost.monitoring.ColumnProfile``)."""

    @property
    def kind(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def nulls(self) -> int: ...
    @property
    def quantiles(self) -> Sequence[float] | None: ...
    @property
    def categories(self) -> Mapping[Any, float] | None: ...


class ProfileLike(Protocol):
    """What the report reads of a profile (``milepost.monitoring.Profile``)."""

    @property
    def rows(self) -> int: ...
    @property
    def columns(self) -> Mapping[str, Any]: ...


class DriftResultLike(Protocol):
    """What the report reads of a drift result (``milepost.monitoring.DriftResult``)."""

    @property
    def features(self) -> pd.DataFrame: ...
    @property
    def reference(self) -> Any: ...
    @property
    def current(self) -> Any: ...
    @property
    def dataset_drift(self) -> bool: ...


# --------------------------------------------------------------------------- content


def report_json(
    drift_result: DriftResultLike,
    *,
    title: str = "Drift report",
    history: c.Points = None,
    performance: c.Points = None,
    alerts: Iterable[Any] | None = None,
    multivariate: Any = None,
    reference_window: c.Window = None,
    current_window: c.Window = None,
) -> dict[str, Any]:
    """The report's content as a JSON-ready dict (what :func:`render_report` draws).

    Keys: ``title``, ``generated_at`` (ISO, UTC), ``summary`` (verdict, drifted and
    total feature and test counts, each side's rows and window), ``features`` (one
    record per feature and method), ``distributions`` (per feature: kind, each side's
    count/nulls/mean/std/min/max, and the plotted bins or categories with shares),
    ``history``, ``performance`` and ``alerts`` (the points drawn, times as ISO strings)
    and ``multivariate`` (the domain classifier's summary, or None).

    Args:
        drift_result: what :func:`milepost.monitoring.drift` returned.
        title: the page title.
        history: drift points over time, each with ``time, feature, method, statistic``
            and optionally ``threshold`` and ``p_value``; or a monitor's stored results
            (``run_at, check, metric, feature, value, threshold``: records or dicts),
            of which the non-performance ones are drawn.
        performance: points with ``time, metric, value`` and optionally ``kind``
            (``"realised"``, the default, or ``"estimated"``) or ``estimated``; or the
            table :func:`~milepost.monitoring.performance_over_time` returns (each
            metric, its estimate and the labelled share, at each window's start); or a
            monitor's stored results, of which the ``performance`` ones are drawn.
        alerts: alerts to list (mappings, or objects with ``to_dict()``).
        multivariate: a :func:`~milepost.monitoring.domain_classifier_drift` result, shown
            in the summary (AUC, its interval, threshold, the most separating columns).
        reference_window, current_window: each side's window, as a label or a
            ``(start, end)`` pair of times.

    Raises:
        InvalidInput: ``drift_result`` has no ``features`` table, or a point lacks a
            required key or has a time that is not one.
    """
    table = getattr(drift_result, "features", None)
    if table is None or not hasattr(table, "to_dict"):
        raise InvalidInput(
            f"{type(drift_result).__name__} has no features table.",
            hint="Pass the result of milepost.monitoring.drift(reference, current).",
        )
    missing = [k for k in REQUIRED_COLUMNS if k not in getattr(table, "columns", ())]
    if missing:
        raise InvalidInput(
            f"The features table has no column {', '.join(missing)}.",
            hint="Pass the result of milepost.monitoring.drift(reference, current).",
        )
    rows = [{str(k): c.plain(v) for k, v in r.items()} for r in table.to_dict("records")]
    ref, cur = getattr(drift_result, "reference", None), getattr(drift_result, "current", None)
    ref_cols = getattr(ref, "columns", None) or {}
    cur_cols = getattr(cur, "columns", None) or {}

    names = list(dict.fromkeys(str(r["feature"]) for r in rows))
    summary = c.summary(drift_result, rows, names)
    dists = c.distributions(rows, names, summary["drifted_names"], ref_cols, cur_cols)
    unseen = getattr(drift_result, "unseen_categories", None)
    for name, listed in (unseen or {}).items():  # the result's list wins (capped profiles)
        if name in dists and dists[name]["kind"] == "categorical":
            dists[name]["plot"]["new_categories"] = [str(v) for v in listed]
    summary["reference"] = {
        "rows": c.plain(getattr(ref, "rows", None)),
        "window": c.window_label(reference_window),
    }
    summary["current"] = {
        "rows": c.plain(getattr(cur, "rows", None)),
        "window": c.window_label(current_window),
    }
    return {
        "title": str(title),
        "generated_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "summary": summary,
        "features": rows,
        "distributions": dists,
        "history": rs.history_points(history),
        "performance": rs.performance_points(performance),
        "alerts": rs.alert_rows(alerts),
        "multivariate": rs.multivariate_summary(multivariate),
    }


# --------------------------------------------------------------------------- HTML


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["num"] = _svg.fmt
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:.1%}"
    env.filters["count"] = lambda v: "-" if v is None else f"{v:,}"
    return env


def _template() -> jinja2.Template:
    text = resources.files("milepost.monitoring").joinpath("templates/report.html.j2")
    return _environment().from_string(text.read_text(encoding="utf-8"))


#: Methods whose threshold applies to the p-value (drift below it), not the statistic.
TESTS = frozenset({"ks", "chi_square"})


def _trend(feature: str, method: str, pts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One drift-over-time chart: the p-value against the threshold for hypothesis
    tests, the statistic against it for distances; a test whose points carry no p-value
    is drawn as its statistic alone (its threshold is for a p-value, not comparable)."""
    from markupsafe import Markup

    has_p = any(p["p_value"] is not None for p in pts)
    test = has_p or method in TESTS
    key = "p_value" if has_p else "statistic"
    xs = [p["time_ms"] for p in pts]
    line = _svg.Series(key.replace("_", "-"), xs, [c.number(p[key]) for p in pts])
    limits = [(p["time_ms"], c.number(p["threshold"])) for p in pts if p["threshold"] is not None]
    threshold = None
    if limits and (has_p or not test):
        xs_t, ys_t = [x for x, _ in limits], [y for _, y in limits]
        threshold = _svg.Series("threshold", xs_t, ys_t, dashed=True)
    if threshold is None:
        reads = "statistic only: no p-values or threshold given" if test else "no threshold given"
    else:
        reads = f"drift {'below' if test else 'above'} the threshold (dashed red line)"
    svg = _svg.lines_svg(
        f"{feature} · {method}", [line], y_label=key.replace("_", "-"), threshold=threshold
    )
    return {
        "feature": feature,
        "method": method,
        "reads": reads,
        "svg": Markup(svg),  # noqa: S704 - built from escaped text only
    }


def _charts(content: Mapping[str, Any]) -> dict[str, Any]:
    """The SVG strings, marked safe: every text inside went through html.escape."""
    from markupsafe import Markup

    dists = {}
    for name, d in content["distributions"].items():
        p = d["plot"]
        if d["kind"] == "categorical":
            svg = _svg.category_svg(name, p["categories"], p["reference"], p["current"], p["new"])
        else:
            svg = _svg.density_svg(name, p["edges"], p["reference"], p["current"])
        dists[name] = Markup(svg)  # noqa: S704 - built from escaped text only

    trends = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in content["history"]:
        groups.setdefault((p["feature"], p["method"]), []).append(p)
    for (feature, method), pts in groups.items():
        trends.append(_trend(feature, method, pts))

    perf = []
    metrics: dict[str, list[dict[str, Any]]] = {}
    for p in content["performance"]:
        metrics.setdefault(p["metric"], []).append(p)
    for metric, pts in metrics.items():
        kinds = list(dict.fromkeys(p["kind"] for p in pts))
        series = [
            _svg.Series(
                k,
                [p["time_ms"] for p in pts if p["kind"] == k],
                [c.number(p["value"]) for p in pts if p["kind"] == k],
                dashed=k.startswith("estimated"),
                colour=_svg.CURRENT if k.startswith("estimated") else _svg.REFERENCE,
            )
            for k in kinds
        ]
        perf.append(
            {
                "metric": metric,
                "svg": Markup(_svg.lines_svg(metric, series, y_label=metric, from_zero=False)),  # noqa: S704
            }
        )
    return {"distributions": dists, "trends": trends, "performance": perf}


def render_report(
    drift_result: DriftResultLike,
    *,
    title: str = "Drift report",
    history: c.Points = None,
    performance: c.Points = None,
    alerts: Iterable[Any] | None = None,
    multivariate: Any = None,
    reference_window: c.Window = None,
    current_window: c.Window = None,
) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script, no
    external reference). Arguments and errors as :func:`report_json`."""
    content = report_json(
        drift_result,
        title=title,
        history=history,
        performance=performance,
        alerts=alerts,
        multivariate=multivariate,
        reference_window=reference_window,
        current_window=current_window,
    )
    return _render(content)


def _render(content: Mapping[str, Any]) -> str:
    alert_keys = list(dict.fromkeys(k for a in content["alerts"] for k in a))[:8]
    return _template().render(r=content, charts=_charts(content), alert_keys=alert_keys)


def write_report(
    path: str | os.PathLike[str],
    drift_result: DriftResultLike,
    *,
    title: str = "Drift report",
    history: c.Points = None,
    performance: c.Points = None,
    alerts: Iterable[Any] | None = None,
    multivariate: Any = None,
    reference_window: c.Window = None,
    current_window: c.Window = None,
) -> tuple[Path, Path]:
    """Write the report as ``<path>.html`` and ``<path>.json`` side by side.

    ``path`` may end in ``.html`` or ``.json`` or have no suffix; both files share its
    stem. Each file is written to a temporary name and renamed, so a reader never sees
    half a report. Arguments and errors as :func:`report_json`.

    Returns:
        The paths of the HTML and the JSON files.
    """
    import json

    base = Path(path)
    if base.suffix.lower() in (".html", ".htm", ".json"):
        base = base.with_suffix("")
    html_path, json_path = Path(f"{base}.html"), Path(f"{base}.json")
    content = report_json(
        drift_result,
        title=title,
        history=history,
        performance=performance,
        alerts=alerts,
        multivariate=multivariate,
        reference_window=reference_window,
        current_window=current_window,
    )
    html = _render(content)
    data = json.dumps(content, indent=1, allow_nan=False)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    for target, text in ((html_path, html), (json_path, data)):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return html_path, json_path
