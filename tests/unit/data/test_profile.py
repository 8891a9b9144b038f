"""Column profiles: distinct counts a reader can trust."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from milepost.data._profile import profile_files


def _profile(table: pa.Table, tmp_path: Path) -> dict[str, dict[str, object]]:
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    return profile_files([path], table.schema, table.num_rows)


def test_distinct_is_exact_where_the_top_values_are_counted(tmp_path: Path) -> None:
    # DuckDB's estimate says 2,028 here: more values than rows
    n = 2000
    table = pa.table(
        {"id": [f"cust-{i:05d}" for i in range(n)], "b": [i % 2 == 0 for i in range(n)]}
    )
    p = _profile(table, tmp_path)
    assert (p["id"]["distinct"], p["id"]["distinct_exact"]) == (2000, True)
    assert (p["b"]["distinct"], p["b"]["distinct_exact"]) == (2, True)


def test_an_estimate_is_labelled_and_never_above_the_values_there_are(tmp_path: Path) -> None:
    n = 120_000  # beyond the exact count's limit of 100,000 distinct values
    ids = pa.array([f"id-{i:07d}" if i % 10 else None for i in range(n)])
    p = _profile(pa.table({"id": ids}), tmp_path)["id"]
    assert p["distinct_exact"] is False and "top" not in p
    assert 0.9 * 108_000 <= p["distinct"] <= 108_000 == n - p["nulls"]
