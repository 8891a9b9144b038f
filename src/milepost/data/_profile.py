"""Column profiles computed by DuckDB straight from the staged Parquet files.

DuckDB streams the files with a memory limit, so profiling is bounded whatever the
size. Per column: null count and fraction; numbers get min, max, mean, standard
deviation and approximate quantiles (DuckDB's reservoir sample); text and booleans get
a distinct count of non-null values and the top values with exact counts; times get min
and max.

``distinct`` is exact (``distinct_exact: true``) for columns of up to 100,000 distinct
values, counted in the same grouping that finds the top values. Above that it is
DuckDB's HyperLogLog estimate (``distinct_exact: false``), capped at the number of
non-null values, so it never exceeds the rows there are.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import duckdb

__all__ = ["QUANTILES", "connect", "profile_files", "quote", "source_sql"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_TOP_K = 5
_TOP_VALUES_MAX_DISTINCT = 100_000


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def source_sql(files: Sequence[Path]) -> str:
    """``read_parquet([...])`` over local files, as a SQL literal (paths escaped)."""
    paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    return f"read_parquet([{paths}])"


def connect(memory_limit: str = "512MB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a memory limit (spills to disk beyond it)."""
    import duckdb  # here, not at the top: a model server never needs it

    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_temporal(t):
        return "temporal"
    if (
        pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
    ):
        return "categorical"
    return "other"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def profile_files(
    files: Sequence[Path],
    schema: pa.Schema,
    num_rows: int,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, dict[str, Any]]:
    """One profile dict per column, computed in one scan plus one per text column."""
    own = con is None
    con = con or connect()
    src = source_sql(files)
    exprs: list[str] = []
    slots: list[tuple[str, str]] = []

    def add(column: str, stat: str, expr: str) -> None:
        exprs.append(expr)
        slots.append((column, stat))

    for f in schema:
        c, kind = quote(f.name), _kind(f.type)
        add(f.name, "non_null", f"count({c})")
        if kind == "numeric":
            num = f"CAST({c} AS DOUBLE)"
            add(f.name, "min", f"min({num})")
            add(f.name, "max", f"max({num})")
            add(f.name, "mean", f"avg({num})")
            add(f.name, "std", f"stddev_samp({num})")
            q = ", ".join(str(x) for x in QUANTILES)
            add(f.name, "quantiles", f"reservoir_quantile({num}, [{q}])")
        elif kind == "temporal":
            add(f.name, "min", f"min({c})")
            add(f.name, "max", f"max({c})")
        elif kind == "categorical":
            add(f.name, "distinct", f"approx_count_distinct({c})")
    row = con.sql(f"SELECT {', '.join(exprs)} FROM {src}").fetchall()[0]
    profile: dict[str, dict[str, Any]] = {
        f.name: {"type": str(f.type), "kind": _kind(f.type)} for f in schema
    }
    for (column, stat), value in zip(slots, row, strict=True):
        if stat == "quantiles":
            profile[column]["quantiles"] = (
                None
                if value is None
                else {str(q): _clean(v) for q, v in zip(QUANTILES, value, strict=True)}
            )
        else:
            profile[column][stat] = _clean(value)
    for f in schema:
        p = profile[f.name]
        non_null = int(p.pop("non_null"))
        nulls = num_rows - non_null
        p["nulls"] = nulls
        p["null_fraction"] = nulls / num_rows if num_rows else 0.0
        if p["kind"] != "categorical":
            continue
        p["distinct"] = min(int(p.get("distinct") or 0), non_null)  # an estimate so far
        p["distinct_exact"] = False
        if p["distinct"] <= _TOP_VALUES_MAX_DISTINCT:
            c = quote(f.name)
            top = con.sql(
                f"SELECT v, n, count(*) OVER () FROM (SELECT {c} AS v, count(*) AS n "
                f"FROM {src} WHERE {c} IS NOT NULL GROUP BY 1) ORDER BY n DESC, v LIMIT {_TOP_K}"
            ).fetchall()
            p["top"] = [{"value": _clean(v), "count": int(n)} for v, n, _ in top]
            p["distinct"], p["distinct_exact"] = (int(top[0][2]) if top else 0), True
    if own:
        con.close()
    return profile
