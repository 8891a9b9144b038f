"""What the monitoring report shows, as JSON-ready values (see :mod:`milepost.monitoring.report`).

Normalises the inputs (times to epoch milliseconds, NumPy scalars and NaN to plain
values), turns profiles into plotted bins and category shares, and thins time series.
Pure Python: no NumPy needed here.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_POINTS",
    "NUMERIC_BINS",
    "TOP_CATEGORIES",
    "Points",
    "Window",
    "categorical_plot",
    "distributions",
    "iso",
    "number",
    "numeric_plot",
    "parse_time",
    "plain",
    "records",
    "side_stats",
    "summary",
    "thin",
    "to_ms",
    "window_label",
]

#: Equal-width bins of a numeric distribution chart.
NUMERIC_BINS = 40
#: Categories drawn one by one; the rest are summed in "other".
TOP_CATEGORIES = 10
#: Points kept per line of a time-series chart (evenly thinned beyond).
MAX_POINTS = 500

Window: TypeAlias = str | tuple[Any, Any] | None
Points: TypeAlias = "Iterable[Mapping[str, Any]] | pd.DataFrame | None"

# --------------------------------------------------------------------------- values


def plain(value: Any) -> Any:
    """A JSON-ready Python value: NumPy scalars unwrapped, NaN and NaT as None."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, TypeError):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, datetime):
        return iso(to_ms(value))
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def to_ms(value: Any) -> float:
    """Epoch milliseconds (UTC) from a datetime, an ISO string or a number of ms."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp()) * 1000.0
    if hasattr(value, "astype"):  # numpy datetime64
        return float(value.astype("datetime64[ms]").astype("int64"))
    raise TypeError(f"{value!r} is not a time")


def iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def parse_time(value: Any, where: str) -> float:
    try:
        return to_ms(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{where}: time {value!r} is not a time ({exc}).",
            hint="Pass a datetime, an ISO 8601 string or epoch milliseconds.",
        ) from exc


def window_label(window: Window) -> str:
    if window is None:
        return "not given"
    if isinstance(window, str):
        return window
    if not isinstance(window, tuple | list) or len(window) != 2:
        raise InvalidInput(
            f"A window of {window!r}.",
            hint="Pass a window as a label or a (start, end) pair of times.",
        )
    start, end = window
    return f"{_label(parse_time(start, 'window'))} to {_label(parse_time(end, 'window'))} (UTC)"


def _label(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def records(points: Points, what: str, required: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a list of mappings or a DataFrame, each checked for ``required`` keys."""
    if points is None:
        return []
    rows: Iterable[Any]
    if hasattr(points, "to_dict") and hasattr(points, "columns"):
        rows = points.to_dict("records")
    elif isinstance(points, Iterable) and not isinstance(points, str | bytes | Mapping):
        rows = points
    else:
        raise InvalidInput(
            f"{what} is a {type(points).__name__}.",
            hint=f"Pass {what} as a list of dicts or a DataFrame with columns "
            f"{', '.join(required)}.",
        )
    out = []
    for i, item in enumerate(rows):
        row = item.to_dict() if hasattr(item, "to_dict") and not isinstance(item, Mapping) else item
        if not isinstance(row, Mapping):
            raise InvalidInput(
                f"{what}[{i}] is a {type(row).__name__}, not a mapping.",
                hint=f"Pass {what} as a list of dicts or a DataFrame with columns "
                f"{', '.join(required)}.",
            )
        missing = [k for k in required if k not in row]
        if missing:
            raise InvalidInput(
                f"{what}[{i}] has no {', '.join(missing)}.",
                hint=f"Each {what} point needs {', '.join(required)}.",
            )
        out.append(dict(row))
    return out


def thin(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_POINTS points, evenly spaced, first and last kept."""
    if len(points) <= MAX_POINTS:
        return points
    step = (len(points) - 1) / (MAX_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_POINTS)]


def number(value: Any) -> float:
    value = plain(value)
    return float("nan") if value is None else float(value)


# ------------------------------------------------------------------- distributions


def _quantile_at(q: Sequence[float], p: float) -> float:
    pos = p * (len(q) - 1)
    i = min(int(pos), len(q) - 2)
    return q[i] + (q[i + 1] - q[i]) * (pos - i)


def _cdf(q: Sequence[float], x: float) -> float:
    """Share of values <= x, linear between quantiles at evenly spaced probabilities."""
    if x < q[0]:
        return 0.0
    if x >= q[-1]:
        return 1.0
    j = bisect_right(q, x)  # q[j-1] <= x < q[j]
    n = len(q) - 1
    return ((j - 1) + (x - q[j - 1]) / (q[j] - q[j - 1])) / n


def _usable(q: Any) -> list[float]:
    values = [float(v) for v in (q or []) if v is not None and math.isfinite(float(v))]
    return sorted(values) if len(values) >= 2 else []


def numeric_plot(ref: Any, cur: Any) -> dict[str, Any]:
    sides = [_usable(getattr(p, "quantiles", None)) if p is not None else [] for p in (ref, cur)]
    present = [q for q in sides if q]
    if not present:
        return {"edges": [], "reference": [], "current": []}
    lo = min(_quantile_at(q, 0.01) for q in present)
    hi = max(_quantile_at(q, 0.99) for q in present)
    if hi <= lo:  # a constant: one bin around it
        half = abs(lo) * 0.05 or 0.5
        lo, hi = lo - half, hi + half
    width = (hi - lo) / NUMERIC_BINS
    edges = [lo + i * width for i in range(NUMERIC_BINS)] + [hi]
    shares = []
    for q in sides:
        if not q:
            shares.append([0.0] * NUMERIC_BINS)
            continue
        cdf = [_cdf(q, e) for e in edges]
        shares.append([max(b - a, 0.0) for a, b in itertools.pairwise(cdf)])
    return {"edges": edges, "reference": shares[0], "current": shares[1]}


def categorical_plot(ref: Any, cur: Any) -> dict[str, Any]:
    counts = [
        {str(k): float(v) for k, v in (getattr(p, "categories", None) or {}).items()}
        for p in (ref, cur)
    ]
    totals = [sum(c.values()) or 1.0 for c in counts]
    shares = [{k: v / t for k, v in c.items()} for c, t in zip(counts, totals, strict=True)]
    names = sorted(
        set(shares[0]) | set(shares[1]),
        key=lambda k: (-max(shares[0].get(k, 0.0), shares[1].get(k, 0.0)), k),
    )
    top, rest = names[:TOP_CATEGORIES], names[TOP_CATEGORIES:]
    plot: dict[str, Any] = {
        "categories": top,
        "reference": [shares[0].get(k, 0.0) for k in top],
        "current": [shares[1].get(k, 0.0) for k in top],
        "new": [counts[0].get(k, 0.0) == 0 for k in top],
    }
    if rest:
        plot["categories"].append(f"other ({len(rest)})")
        plot["reference"].append(sum(shares[0].get(k, 0.0) for k in rest))
        plot["current"].append(sum(shares[1].get(k, 0.0) for k in rest))
        plot["new"].append(False)
    plot["new_categories"] = sorted(k for k in counts[1] if counts[0].get(k, 0.0) == 0)
    return plot


def side_stats(profile: Any) -> dict[str, Any]:
    if profile is None:
        return {"present": False}
    out: dict[str, Any] = {"present": True}
    for name in ("count", "nulls", "mean", "std", "min", "max"):
        out[name] = plain(getattr(profile, name, None))
    return out


def distributions(
    rows: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    drifted: Sequence[str],
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """Per feature: kind, drifted, each side's summary numbers and the plotted values.

    ``reference`` and ``current`` map a column name to its column profile; a column
    missing on one side plots that side empty (and says "column absent").
    """
    out = {}
    for name in names:
        rp, cp = reference.get(name), current.get(name)
        kind = getattr(rp or cp, "kind", None) or next(
            (r.get("kind") for r in rows if r["feature"] == name), "numeric"
        )
        plot = categorical_plot(rp, cp) if kind == "categorical" else numeric_plot(rp, cp)
        out[name] = {
            "kind": kind,
            "drifted": name in drifted,
            "reference": side_stats(rp),
            "current": side_stats(cp),
            "plot": plot,
        }
    return out


def summary(result: Any, rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The verdict and the counts behind it, as the drift result defines them.

    With a :class:`~milepost.monitoring.DriftResult` the counts are its own
    (``drifted_features`` over ``compared``, ``drifted_share``, ``important_drifted``,
    ``counted``), so the report says what the result says. Without those fields a
    feature is drifted when any of its rows is, out of every feature in the table.
    """
    listed = getattr(result, "drifted_features", None)
    if listed is None:
        drifted = list(dict.fromkeys(str(r["feature"]) for r in rows if r.get("drifted")))
    else:
        drifted = [str(n) for n in listed]
    compared = plain(getattr(result, "compared", None))
    features = len(names) if compared is None else int(compared)
    share = plain(getattr(result, "drifted_share", None))
    if share is None:
        share = len(drifted) / features if features else 0.0
    counted = getattr(result, "counted", None) or {}
    reasons = []
    drift_share = plain(getattr(result, "drift_share", None))
    if drift_share is not None and features and share >= drift_share:
        reasons.append(f"{share:.0%} of features drifted (the limit is {drift_share:.0%})")
    important = [str(n) for n in getattr(result, "important_drifted", None) or []]
    if important:
        reasons.append(f"important features drifted: {', '.join(important)}")
    return {
        "dataset_drift": bool(getattr(result, "dataset_drift", bool(drifted))),
        "reasons": reasons,
        "features": features,
        "not_compared": len(names) - features if compared is not None else 0,
        "drifted_features": len(drifted),
        "drifted_share": float(share),
        "drifted_names": drifted,
        "counted": {str(k): str(v) for k, v in counted.items()},
        "tests": len(rows),
        "drifted_tests": sum(1 for r in rows if r.get("drifted")),
        # False when the reference was a stored profile (some statistics approximate)
        "exact": bool(getattr(result, "exact", True)),
    }
