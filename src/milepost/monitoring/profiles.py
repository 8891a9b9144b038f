"""The reference profile: a summary of a data set whose size does not grow with its rows.

:func:`profile` reads a DataFrame once and keeps, per column (a :class:`ColumnProfile`):

- **numbers**: the non-null count and nulls (NaN, None and infinities count as nulls),
  mean, standard deviation (population, ``ddof=0``), min and max; ``QUANTILES`` (1,001)
  quantiles at probabilities ``0, 0.001, ..., 1`` (linear interpolation, as
  ``np.quantile``); and the PSI bins: inner ``edges`` at the deciles (duplicates dropped,
  so a column with few distinct values has fewer bins) with the ``counts`` of values in
  each of the ``len(edges) + 1`` bins (``[edge_i, edge_i+1)``, the outer two open-ended);
- **categories**: the count of each value (keys are text: ``str(value)``, with
  integral floats written as integers so ``3`` and ``3.0`` are one category, booleans as
  ``"True"``/``"False"``); beyond the ``MAX_CATEGORIES`` (1,000) most frequent, the rest
  are summed under :data:`OTHER` (``"__other__"``).

Which columns are categories: booleans and non-numeric dtypes (object, string,
category); numbers otherwise; ``categorical=[...]`` forces columns to be categories.
Datetimes are numbers, in seconds since the epoch.

Statistics read from a stored profile (see :func:`milepost.monitoring.drift`) are exact
for PSI, Jensen-Shannon and chi-square (while a column has at most 1,000 categories) and
approximate for KS and Wasserstein, which need the whole distribution: the reference's
CDF is rebuilt by linear interpolation between its 1,001 quantiles, so its error is at
most one grid step, 0.001, in the KS statistic for a continuous column (negligible next
to the critical value ``1.36 * sqrt(2 / n)``, about 0.019 at 10,000 rows per side), and
the Wasserstein distance misses only what lies between the grid points (in practice
within 1% of the reference's standard deviation; heavy tails beyond the 0.1% / 99.9%
quantiles contribute most of the error).

``Profile.to_dict()`` is JSON-ready (``None`` for missing numbers) and
``Profile.from_dict`` reads it back, checking its shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from milepost.errors import InvalidInput
from milepost.monitoring.stats import sorted_quantiles

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import pandas as pd

__all__ = [
    "MAX_CATEGORIES",
    "OTHER",
    "PSI_BINS",
    "QUANTILES",
    "ColumnProfile",
    "Profile",
    "profile",
]

FloatArray = npt.NDArray[np.float64]
Kind = Literal["numeric", "categorical"]

#: How many quantiles a numeric column keeps (probabilities evenly spaced 0..1).
QUANTILES = 1001
#: PSI bins per numeric column (inner edges at the deciles).
PSI_BINS = 10
#: The most categories a column keeps; the rest are summed under ``OTHER``.
MAX_CATEGORIES = 1000
#: The category that holds the categories beyond ``MAX_CATEGORIES``.
OTHER = "__other__"
_FORMAT = 1
_PROBS = np.linspace(0.0, 1.0, QUANTILES)
_DECILES = np.linspace(0.0, 1.0, PSI_BINS + 1)[1:-1]


@dataclass(frozen=True)
class ColumnProfile:
    """One column's summary (see the module docstring); ``None`` where not applicable."""

    name: str
    kind: Kind
    count: int
    nulls: int
    quantiles: list[float] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    categories: dict[str, float] = field(default_factory=dict)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None

    @property
    def capped(self) -> bool:
        """True when categories beyond ``MAX_CATEGORIES`` were summed under ``OTHER``."""
        return OTHER in self.categories

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "quantiles": list(self.quantiles),
            "edges": list(self.edges),
            "counts": list(self.counts),
            "categories": dict(self.categories),
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnProfile:
        """Read :meth:`to_dict`'s output back. Raises InvalidInput on a bad shape."""
        try:
            kind = d["kind"]
            if kind not in ("numeric", "categorical"):
                raise ValueError(f"kind {kind!r}")
            col = cls(
                name=str(d["name"]),
                kind=kind,
                count=int(d["count"]),
                nulls=int(d["nulls"]),
                quantiles=[float(x) for x in d.get("quantiles", [])],
                edges=[float(x) for x in d.get("edges", [])],
                counts=[float(x) for x in d.get("counts", [])],
                categories={str(k): float(v) for k, v in d.get("categories", {}).items()},
                mean=_opt_float(d.get("mean")),
                std=_opt_float(d.get("std")),
                min=_opt_float(d.get("min")),
                max=_opt_float(d.get("max")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(
                f"Not a column profile: {type(exc).__name__}: {exc}.",
                hint="Pass what ColumnProfile.to_dict() or Profile.to_dict() returned.",
            ) from exc
        if col.kind == "numeric" and col.count > 0:
            if len(col.counts) != len(col.edges) + 1:
                raise InvalidInput(
                    f"Column profile {col.name!r} has {len(col.edges)} edges but "
                    f"{len(col.counts)} bin counts (needs edges + 1).",
                    hint="Pass what Profile.to_dict() returned, unchanged.",
                )
            if len(col.quantiles) < 2 or col.std is None:
                raise InvalidInput(
                    f"Column profile {col.name!r} has values but no quantiles or std.",
                    hint="Pass what Profile.to_dict() returned, unchanged.",
                )
        return col


@dataclass(frozen=True)
class Profile:
    """A data set's reference profile: ``rows`` and one :class:`ColumnProfile` per
    column, in the frame's order."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN: missing numbers are ``None``)."""
        return {
            "format": _FORMAT,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        """Read :meth:`to_dict`'s output back. Raises InvalidInput on a bad shape."""
        if not isinstance(d, dict) or "columns" not in d or "rows" not in d:
            raise InvalidInput(
                "Not a profile: expected a mapping with 'rows' and 'columns'.",
                hint="Pass what Profile.to_dict() returned.",
            )
        if d.get("format", _FORMAT) != _FORMAT:
            raise InvalidInput(
                f"Profile format {d.get('format')!r} is not supported (this version reads "
                f"{_FORMAT}).",
                hint="Compute the profile again with milepost.monitoring.profile().",
            )
        cols = [ColumnProfile.from_dict(c) for c in d["columns"]]
        return cls(rows=int(d["rows"]), columns={c.name: c for c in cols})


def profile(frame: Any, *, categorical: Iterable[str] | None = None) -> Profile:
    """The reference profile of a DataFrame (see the module docstring).

    Args:
        frame: a pandas DataFrame (or an object with ``to_pandas()``, e.g. an Arrow table).
        categorical: column names to treat as categories whatever their dtype.

    Raises:
        InvalidInput: not a DataFrame, or ``categorical`` names a column it lacks.
    """
    df = as_frame(frame, "frame")
    forced = _forced(categorical, df)
    cols = {}
    for name in df.columns:
        kind = column_kind(df[name], forced=name in forced)
        cols[name] = profile_column(df[name], kind)[0]
    return Profile(rows=len(df), columns=cols)


# -- building blocks shared with drift ------------------------------------------------


def as_frame(frame: Any, what: str) -> pd.DataFrame:
    """``frame`` as a pandas DataFrame with text column names (``1`` becomes ``"1"``),
    or InvalidInput."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) and hasattr(frame, "to_pandas"):
        frame = frame.to_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(
            f"{what} must be a pandas DataFrame, got {type(frame).__name__}.",
            hint="Pass a DataFrame (pandas, or anything with .to_pandas()).",
        )
    df: pd.DataFrame = frame
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)  # profiles name columns by text
    if df.columns.duplicated().any():
        dup = sorted(set(df.columns[df.columns.duplicated()]))
        raise InvalidInput(
            f"{what} has duplicate column names: {', '.join(dup)}.",
            hint="Rename the columns so each name appears once (names compare as text).",
        )
    return df


def _forced(categorical: Iterable[str] | None, df: pd.DataFrame) -> set[str]:
    if categorical is None:
        return set()
    if isinstance(categorical, str):
        categorical = [categorical]
    names = {str(c) for c in categorical}
    missing = names - set(df.columns)
    if missing:
        raise InvalidInput(
            f"categorical names columns the frame lacks: {', '.join(sorted(missing))}.",
            hint=f"Columns: {', '.join(map(str, df.columns))}.",
        )
    return names


def column_kind(series: pd.Series[Any], *, forced: bool = False) -> Kind:
    """``categorical`` for booleans, non-numeric dtypes and forced columns; else
    ``numeric`` (datetimes and timedeltas included)."""
    from pandas.api import types

    if forced or types.is_bool_dtype(series.dtype):
        return "categorical"
    if (
        types.is_numeric_dtype(series.dtype)
        or types.is_datetime64_any_dtype(series.dtype)
        or types.is_timedelta64_dtype(series.dtype)
    ):
        return "numeric"
    return "categorical"


def numeric_values(series: pd.Series[Any]) -> FloatArray | None:
    """A column's values as float64 (nulls as NaN; datetimes in seconds since the epoch),
    or None when they are not numbers."""
    import pandas as pd
    from pandas.api import types

    if types.is_datetime64_any_dtype(series.dtype) or types.is_timedelta64_dtype(series.dtype):
        ints = series.to_numpy(dtype="int64", na_value=np.iinfo(np.int64).min)
        out = ints.astype(np.float64) / 1e9
        out[ints == np.iinfo(np.int64).min] = np.nan
        return out
    if types.is_numeric_dtype(series.dtype) or types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        return pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return None


def category_counts(series: pd.Series[Any]) -> dict[str, float]:
    """Count of each non-null value, keyed by its text (see the module docstring)."""
    counts = series.value_counts(dropna=True, sort=False)
    out: dict[str, float] = {}
    for key, n in zip(counts.index.tolist(), counts.to_numpy().tolist(), strict=True):
        k = category_key(key)
        out[k] = out.get(k, 0.0) + float(n)
    return out


def category_key(value: Any) -> str:
    """The text a category value is counted under."""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def cap_categories(counts: Mapping[str, float]) -> dict[str, float]:
    """The ``MAX_CATEGORIES`` most frequent categories (most frequent first), the rest
    summed under ``OTHER``."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ordered) <= MAX_CATEGORIES:
        return dict(ordered)
    kept = dict(ordered[:MAX_CATEGORIES])
    kept[OTHER] = kept.get(OTHER, 0.0) + float(sum(v for _, v in ordered[MAX_CATEGORIES:]))
    return kept


def profile_column(series: pd.Series[Any], kind: Kind) -> tuple[ColumnProfile, FloatArray | None]:
    """One column's profile and, for numbers, its sorted finite values (reused by drift).

    A numeric-kind column whose values are not numbers raises ``TypeError``.
    """
    name, rows = str(series.name), len(series)
    if kind == "categorical":
        cats = cap_categories(category_counts(series))
        count = int(sum(cats.values()))
        return ColumnProfile(name, kind, count, rows - count, categories=cats), None
    values = numeric_values(series)
    if values is None:
        raise TypeError(f"column {name!r} holds values that are not numbers")
    finite = np.sort(values[np.isfinite(values)])
    return numeric_profile(name, rows, finite), finite


def numeric_profile(name: str, rows: int, finite: FloatArray) -> ColumnProfile:
    """A numeric column's profile from its sorted finite values."""
    if finite.size == 0:
        return ColumnProfile(name, "numeric", 0, rows)
    edges = np.unique(sorted_quantiles(finite, _DECILES))
    return ColumnProfile(
        name,
        "numeric",
        int(finite.size),
        rows - int(finite.size),
        quantiles=sorted_quantiles(finite, _PROBS).tolist(),
        edges=edges.tolist(),
        counts=sorted_bin_counts(finite, edges).tolist(),
        mean=float(np.mean(finite)),
        std=float(np.std(finite)),
        min=float(finite[0]),
        max=float(finite[-1]),
    )


def sorted_bin_counts(finite: FloatArray, edges: FloatArray) -> FloatArray:
    """Counts of sorted values in the bins ``edges`` make (as ``stats.bin_counts``)."""
    below = np.searchsorted(finite, edges, side="left")
    return np.diff(np.concatenate([[0], below, [finite.size]])).astype(np.float64)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)
