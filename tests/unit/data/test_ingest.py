"""Staging and canonical hashing: layout-independent, content-sensitive, bounded."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milepost.data._ingest import content_hash, stage
from milepost.errors import InvalidInput


def _frame(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "i": pd.array(rng.integers(0, 100, n), dtype="Int64"),
            "f": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "s": pd.array(np.where(rng.random(n) < 0.1, None, rng.choice(["a", "bb", ""], n))),
            "b": rng.random(n) < 0.5,
            "t": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "c": pd.Categorical(rng.choice(["x", "y"], n)),
        }
    )


def _hash(data: object, tmp: Path) -> str:
    staged = stage(data, workdir=tmp / f"w{len(list(tmp.iterdir()))}")
    return content_hash(staged.files, staged.schema)[0]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.integers(min_value=1, max_value=499), max_size=4, unique=True),
    st.integers(min_value=7, max_value=600),
)
def test_hash_ignores_file_splits_and_row_groups(
    tmp_path: Path, cuts: list[int], row_group: int
) -> None:
    table = pa.Table.from_pandas(_frame())
    whole = tmp_path / f"whole-{row_group}.parquet"
    pq.write_table(table, whole)
    bounds = [0, *sorted(cuts), table.num_rows]
    parts = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        part = tmp_path / f"part-{row_group}-{k}-{len(cuts)}.parquet"
        pq.write_table(table.slice(a, b - a), part, row_group_size=row_group, compression="snappy")
        parts.append(str(part))
    assert _hash(str(whole), tmp_path) == _hash(parts, tmp_path) == _hash(_frame(), tmp_path)


def test_hash_sees_every_change(tmp_path: Path) -> None:
    base = _hash(_frame(), tmp_path)
    changes = {
        "value": lambda d: d.assign(f=d["f"].where(d.index != 3, 42.0)),
        "null": lambda d: d.assign(i=d["i"].where(d.index != 4, None)),
        "text": lambda d: d.assign(s=d["s"].where(d.index != 5, "changed")),
        "order": lambda d: d.iloc[::-1].reset_index(drop=True),
        "rename": lambda d: d.rename(columns={"f": "g"}),
        "type": lambda d: d.assign(f=d["f"].astype("float32")),
        "extra row": lambda d: pd.concat([d, d.iloc[:1]], ignore_index=True),
    }
    seen = {base}
    for name, change in changes.items():
        h = _hash(change(_frame()), tmp_path)
        assert h not in seen, f"{name} did not change the hash"
        seen.add(h)


def test_csv_and_parquet_of_the_same_values_hash_alike(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    df.to_csv(tmp_path / "d.csv", index=False)
    pq.write_table(
        pa.table({"a": pa.array([1, 2, 3], pa.int64()), "b": ["x", "y", "z"]}),
        tmp_path / "d.parquet",
    )
    assert _hash(str(tmp_path / "d.csv"), tmp_path) == _hash(str(tmp_path / "d.parquet"), tmp_path)


def test_mismatched_schemas_name_file_and_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1, 2], "b": [1.0, 2.0]}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), tmp_path / "two.parquet")
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "three.parquet")
    with pytest.raises(InvalidInput, match=r"two\.parquet: column 'b' is string but double"):
        stage(
            [str(tmp_path / "one.parquet"), str(tmp_path / "two.parquet")], workdir=tmp_path / "w"
        )
    with pytest.raises(InvalidInput, match=r"three\.parquet lacks column 'b'"):
        stage(
            [str(tmp_path / "one.parquet"), str(tmp_path / "three.parquet")], workdir=tmp_path / "w"
        )


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda p: _write(p / "bad.parquet", "not parquet"),
            r"Cannot read .*bad\.parquet as Parquet",
        ),
        (lambda p: _write(p / "x.json", "{}"), "unsupported file type"),
        (lambda p: str(p / "missing.parquet"), "does not exist"),
        (lambda p: (p / "empty").mkdir() or str(p / "empty"), "holds no .parquet or .csv"),
        (lambda p: _write(p / "bad.csv", "a,b\n1,2\nx\n"), r"Cannot read CSV .*bad\.csv"),
        (lambda p: pa.table({"l": [[1, 2]]}), "column 'l' has type list"),
        (lambda p: {"not": "a frame"}, "Cannot register a dict"),
    ],
)
def test_bad_input_is_refused_with_the_file_named(tmp_path: Path, make: object, match: str) -> None:
    data = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=match):
        stage(data, workdir=tmp_path / "w")
