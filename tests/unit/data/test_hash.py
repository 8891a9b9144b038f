"""The canonical content hash: one logical table, one hash, whatever the encoding."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milepost.data._hash import legacy_content_hash, logical_type_name
from milepost.data._ingest import content_hash, stage
from milepost.demo.data import generate_customers

_counter = itertools.count()


def _hash(data: object, tmp: Path) -> str:
    staged = stage(data, workdir=tmp / f"w{next(_counter)}")
    return content_hash(staged.files, staged.schema)[0]


# -- the property: a generated table in every encoding hashes alike -------------------------

_TEXT = st.text(alphabet="abcxyzé ,\"'", min_size=1, max_size=6)  # CSV: "" is missing
_EPOCH_MS = st.integers(min_value=-2_000_000_000_000, max_value=4_000_000_000_000)
_KINDS = ("int", "float", "text", "bool", "naive", "aware", "date")


@st.composite
def _columns(draw: st.DrawFn) -> dict[str, tuple[str, list[Any]]]:
    """Named columns of one kind each: (kind, Python values with None for null).

    Each column has one value at least (an all-null CSV column has no type), and a float
    column one that is not integral (a CSV column of integral numbers reads as integers:
    the file cannot say otherwise, and integers never turn into floats).
    """
    n = draw(st.integers(min_value=1, max_value=40))
    kinds = draw(st.lists(st.sampled_from(_KINDS), min_size=1, max_size=6))
    values = {
        "int": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "text": _TEXT,
        "bool": st.booleans(),
        "naive": _EPOCH_MS,
        "aware": _EPOCH_MS,
        "date": st.integers(min_value=-20_000, max_value=40_000),
    }
    columns = {}
    for i, kind in enumerate(kinds):
        first = draw(values[kind].filter(lambda v: not isinstance(v, float) or not v.is_integer()))
        rest = draw(st.lists(st.none() | values[kind], min_size=n - 1, max_size=n - 1))
        columns[f"c{i}_{kind}"] = (kind, [first, *rest])
    return columns


_PER_MS = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}


def _arrow(
    columns: dict[str, tuple[str, list[Any]]],
    *,
    int_type: pa.DataType | None = None,
    text: Any = None,
    unit: str = "ms",
    tz: str = "UTC",
    date64: bool = False,
) -> pa.Table:
    """One Arrow encoding of the columns, with the physical types given."""
    int_type = int_type or pa.int64()
    text = text or pa.string()
    arrays = {}
    for name, (kind, values) in columns.items():
        if kind == "int":
            arrays[name] = pa.array(values, int_type)
        elif kind == "float":
            arrays[name] = pa.array(values, pa.float64())
        elif kind == "text":
            arr = pa.array(values, pa.string() if text == "dict" else text)
            arrays[name] = arr.dictionary_encode() if text == "dict" else arr
        elif kind == "bool":
            arrays[name] = pa.array(values, pa.bool_())
        elif kind in ("naive", "aware"):
            per_ms = _PER_MS[unit]
            raw = [
                None if v is None else (v // 1000 if per_ms is None else v * per_ms) for v in values
            ]
            type_ = pa.timestamp(unit, tz=tz if kind == "aware" else None)
            arrays[name] = pa.array(raw, pa.int64()).cast(type_)
        elif date64:
            ms = [None if v is None else v * 86_400_000 for v in values]
            arrays[name] = pa.array(ms, pa.int64()).cast(pa.date64())
        else:
            arrays[name] = pa.array(values, pa.int32()).cast(pa.date32())
    return pa.table(arrays)


def _pandas(columns: dict[str, tuple[str, list[Any]]], text_dtype: str, unit: str) -> pd.DataFrame:
    frame: dict[str, Any] = {}
    for name, (kind, values) in columns.items():
        if kind == "int":
            frame[name] = pd.array(values, dtype="Int64")
        elif kind == "float":
            frame[name] = np.array([np.nan if v is None else v for v in values], dtype="float64")
        elif kind == "text":
            frame[name] = pd.Series(values, dtype=text_dtype)
        elif kind == "bool":
            frame[name] = pd.array(values, dtype="boolean")
        elif kind in ("naive", "aware"):
            stamps = pd.to_datetime(
                pd.array(values, dtype="Int64"), unit="ms", utc=kind == "aware"
            ).as_unit(unit)
            frame[name] = stamps.tz_convert("America/New_York") if kind == "aware" else stamps
        else:
            frame[name] = [
                None if v is None else dt.date(1970, 1, 1) + dt.timedelta(days=v) for v in values
            ]
    return pd.DataFrame(frame)


def _map(columns: dict[str, tuple[str, list[Any]]], kinds: tuple[str, ...], f: Any) -> Any:
    return {
        k: (kind, [f(v) if kind in kinds and v is not None else v for v in vals])
        for k, (kind, vals) in columns.items()
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    _columns(),
    st.sampled_from([pa.int32(), pa.int64(), pa.int16(), pa.uint32()]),
    st.sampled_from([pa.string(), pa.large_string(), pa.string_view(), "dict"]),
    st.sampled_from(["s", "ms", "us", "ns"]),
    st.sampled_from(["UTC", "Europe/Paris", "+05:30"]),
    st.booleans(),
    st.integers(min_value=1, max_value=50),
    st.sampled_from(["zstd", "snappy", "none"]),
    st.sampled_from(["object", "string[python]", "str"]),
)
def test_one_logical_table_has_one_hash_in_every_encoding(
    tmp_path: Path,
    columns: dict[str, tuple[str, list[Any]]],
    int_type: pa.DataType,
    text: Any,
    unit: str,
    tz: str,
    date64: bool,
    row_group: int,
    compression: str,
    text_dtype: str,
) -> None:
    if unit == "s":  # values this unit holds exactly
        columns = _map(columns, ("naive", "aware"), lambda v: v // 1000 * 1000)
    if int_type == pa.int16():
        columns = _map(columns, ("int",), lambda v: v % 2**15)
    if int_type == pa.uint32():
        columns = _map(columns, ("int",), abs)
    reference = _arrow(columns)  # int64, string, timestamp[ms, tz=UTC], date32
    expected = _hash(reference, tmp_path)

    physical = _arrow(columns, int_type=int_type, text=text, unit=unit, tz=tz, date64=date64)
    parquet = tmp_path / f"p{next(_counter)}.parquet"
    pq.write_table(physical, parquet, row_group_size=row_group, compression=compression)
    assert _hash(str(parquet), tmp_path) == expected, "Parquet"
    assert _hash(physical, tmp_path) == expected, "Arrow table"

    csv = tmp_path / f"c{next(_counter)}.csv"
    buffer = io.BytesIO()
    pacsv.write_csv(reference, buffer)
    csv.write_bytes(buffer.getvalue())
    assert _hash(str(csv), tmp_path) == expected, "CSV"

    frame = _pandas(columns, text_dtype, unit)
    assert _hash(frame, tmp_path) == expected, "pandas"


# -- the demo's own frame, as a user would save it ---------------------------------------------


def test_a_dataframe_its_csv_and_its_parquet_files_are_one_version(tmp_path: Path) -> None:
    frame = generate_customers(500, seed=3)
    expected = _hash(frame, tmp_path)
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_parquet(tmp_path / "c.parquet")
    narrow = frame.astype({"age": "int32", "support_tickets": "int16", "plan": "category"})
    narrow["event_timestamp"] = narrow["event_timestamp"].dt.as_unit("ns")
    table = pa.Table.from_pandas(narrow)
    table = table.set_column(
        table.schema.get_field_index("region"),
        "region",
        table.column("region").cast(pa.string()),
    )
    pq.write_table(table, tmp_path / "narrow.parquet", row_group_size=77, compression="gzip")
    assert _hash(str(tmp_path / "c.csv"), tmp_path) == expected
    assert _hash(str(tmp_path / "c.parquet"), tmp_path) == expected
    assert _hash(str(tmp_path / "narrow.parquet"), tmp_path) == expected
    assert _hash(frame.astype({"plan": "object"}), tmp_path) == expected
    assert _hash(frame[frame["age"] > 0], tmp_path) == expected  # an unnamed index is not data


def test_an_empty_csv_field_is_missing_in_text_columns_too(tmp_path: Path) -> None:
    frame = pd.DataFrame({"k": [1, 2, 3, 4], "s": ["a", None, "b", None]})
    frame.to_csv(tmp_path / "f.csv", index=False)
    assert _hash(str(tmp_path / "f.csv"), tmp_path) == _hash(frame, tmp_path)
    (tmp_path / "e.csv").write_text('k,s\n1,a\n2,""\n3,b\n4,\n')
    assert _hash(str(tmp_path / "e.csv"), tmp_path) == _hash(frame, tmp_path)


def test_a_one_column_csv_keeps_its_missing_rows(tmp_path: Path) -> None:
    table = pa.table({"x": pa.array([1, None, 3, None])})
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)  # missing values as empty lines
    (tmp_path / "one.csv").write_bytes(buffer.getvalue())
    pd.DataFrame({"x": [1, None, 3, None]}).astype("Int64").to_csv(
        tmp_path / "pandas.csv", index=False
    )  # missing values as ""
    assert _hash(str(tmp_path / "one.csv"), tmp_path) == _hash(table, tmp_path)
    assert _hash(str(tmp_path / "pandas.csv"), tmp_path) == _hash(table, tmp_path)


def test_a_named_index_is_data(tmp_path: Path) -> None:
    frame = pd.DataFrame({"k": [3, 1, 2], "v": [1.0, 2.0, 3.0]})
    staged = stage(frame.set_index("k"), workdir=tmp_path / "w")
    assert "k" in staged.schema.names
    assert _hash(frame.set_index("k"), tmp_path) != _hash(frame[["v"]], tmp_path)


# -- what must stay different ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (pa.table({"x": pa.array([0.5, 1.0], pa.float32())}), pa.table({"x": [0.5, 1.0]})),
        (pa.table({"x": [1, 2]}), pa.table({"x": [1.0, 2.0]})),
        (pa.table({"x": ["1", "2"]}), pa.table({"x": [1, 2]})),
        (
            pa.table({"t": pa.array([0, 1], pa.timestamp("ms"))}),
            pa.table({"t": pa.array([0, 1], pa.timestamp("ms", tz="UTC"))}),
        ),
        (
            pa.table({"x": pa.array([2**63], pa.uint64())}),
            pa.table({"x": pa.array([-(2**63)], pa.int64())}),
        ),
        (pa.table({"x": [float("nan")]}), pa.table({"x": pa.array([None], pa.float64())})),
        (pa.table({"x": ["a", None]}), pa.table({"x": ["a", ""]})),
        (pa.table({"x": [b"a"]}), pa.table({"x": ["a"]})),
    ],
    ids=[
        "float32-float64",
        "int-float",
        "text-int",
        "naive-aware",
        "uint64-beyond-int64",
        "nan-null",
        "null-empty",
        "binary-text",
    ],
)
def test_different_values_or_meanings_hash_differently(
    tmp_path: Path, a: pa.Table, b: pa.Table
) -> None:
    assert _hash(a, tmp_path) != _hash(b, tmp_path)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (pa.table({"x": pa.array([1, 2], pa.uint64())}), pa.table({"x": [1, 2]})),
        (
            pa.table({"t": pa.array([32_503_680_000], pa.timestamp("s"))}),  # year 3000: no ns
            pa.table({"t": pa.array([32_503_680_000_000_000], pa.timestamp("us"))}),
        ),
        (
            pa.table({"d": pa.array([decimal.Decimal("1.25"), None], pa.decimal32(5, 2))}),
            pa.table({"d": pa.array([decimal.Decimal("1.25"), None], pa.decimal128(5, 2))}),
        ),
        (
            pa.table({"t": pa.array([1, None], pa.time32("ms"))}),
            pa.table({"t": pa.array([1_000_000, None], pa.time64("ns"))}),
        ),
        (
            pa.table({"x": pa.array([float("nan"), 1.0])}),
            pa.table(
                {"x": pa.array(np.array([0x7FF8000000000001, 0x3FF0000000000000]).view("f8"))}
            ),
        ),
        (
            pa.table({"b": pa.array([b"ab", None], pa.binary_view())}),
            pa.table({"b": pa.array([b"ab", None], pa.large_binary())}),
        ),
    ],
    ids=[
        "uint64-int64",
        "timestamp-s-us-far",
        "decimal-widths",
        "time-units",
        "nan-payloads",
        "binary-views",
    ],
)
def test_encodings_of_the_same_values_hash_alike(tmp_path: Path, a: pa.Table, b: pa.Table) -> None:
    assert _hash(a, tmp_path) == _hash(b, tmp_path)


# -- hash version 1 is frozen ------------------------------------------------------------------


def _golden_table() -> pa.Table:
    return pa.table(
        {
            "i32": pa.array([1, -2, None, 4, 5, 6, 2**31 - 1], pa.int32()),
            "i64": pa.array([None, 2, 3, 4, 5, 6, -(2**40)], pa.int64()),
            "f": pa.array([0.5, None, float("nan"), -0.0, 1e300, 2.25, 3.0]),
            "s": pa.array(["a", None, "", "héllo", "b", "c", "dd"]),
            "ls": pa.array(["x", "y", None, "z", "", "w", "v"], pa.large_string()),
            "d": pa.array(["p", "q", "p", None, "q", "p", "r"]).dictionary_encode(),
            "b": pa.array([True, False, None, True, True, False, True]),
            "t": pa.array([0, 1_000, None, 86_400_000, 5, 6, 7], pa.timestamp("ms", tz="UTC")),
            "dt": pa.array([0, 1, 2, None, 4, 5, 6], pa.date32()),
            "bin": pa.array([b"\x00", None, b"ab", b"", b"c", b"d", b"e"]),
            "dec": pa.array(
                [
                    decimal.Decimal(x) if x else None
                    for x in ("1.25", None, "-3.50", "0", "9.99", "1", "2")
                ],
                pa.decimal128(5, 2),
            ),
        }
    )


def test_hash_version_1_is_what_it_always_was(tmp_path: Path) -> None:
    # computed by Milepost before hash version 2; versions stored then carry it
    pq.write_table(_golden_table(), tmp_path / "g.parquet", row_group_size=3)
    staged = stage(str(tmp_path / "g.parquet"), workdir=tmp_path / "w")
    assert legacy_content_hash(staged.files, staged.schema) == (
        "cb0b46a7cc04b0e915830e5c697c363e90ad71feabb46f1cd97f7a8ecdb2bd4c",
        7,
    )


@pytest.mark.parametrize(
    ("text", "logical"),
    [
        ("large_string", "string"),
        ("string_view", "string"),
        ("dictionary<values=string, indices=int32, ordered=0>", "string"),
        ("int32", "int64"),
        ("uint64", "uint64"),
        ("timestamp[ms]", "timestamp"),
        ("timestamp[ns, tz=Europe/Paris]", "timestamp[UTC]"),
        ("dictionary<values=timestamp[ms, tz=UTC], indices=int8, ordered=0>", "timestamp[UTC]"),
        ("date64[ms]", "date"),
        ("time32[s]", "time"),
        ("decimal256(10, 2)", "decimal(10, 2)"),
        ("double", "double"),
        ("float", "float"),
        ("bool", "bool"),
    ],
)
def test_logical_type_names(text: str, logical: str) -> None:
    assert logical_type_name(text) == logical
