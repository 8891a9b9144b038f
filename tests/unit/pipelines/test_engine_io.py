"""Outputs <-> the blob store: the format by type, round trips, hashes of constants."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from milepost.errors import IntegrityViolation, NotFound
from milepost.pipelines import _io
from milepost.pipelines.records import OutputRef


@dataclass(frozen=True)
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("value", "fmt", "summary"),
    [
        (None, "json", "None"),
        (0.125, "json", "0.125"),
        ({"a": [1, 2.5, "x", None, True]}, "json", "dict of 1"),
        ((1, 2), "pickle", "tuple of 2"),
        (Point(1, 2), "pickle", "Point(x=1, y=2)"),
        (float("nan"), "pickle", "nan"),
        (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), "parquet", "DataFrame 2 x 2"),
        (pd.DataFrame({0: [1, 2]}), "parquet", "DataFrame 2 x 1"),
        (pd.DataFrame({"a": [1, {"x": 1}]}), "pickle", "DataFrame 2 x 1"),  # mixed objects
        (pd.Series([1.0, 2.0], name="s"), "parquet-series", "Series 2 (s)"),
        (np.arange(6).reshape(2, 3), "numpy", "ndarray (2, 3) int64"),
        (np.array([{"a": 1}], dtype=object), "pickle", None),
    ],
)
def test_round_trip_by_type(blobs, value: Any, fmt: str, summary: str | None) -> None:
    ref = _io.store(blobs, "return", value)
    assert ref.format == fmt
    assert ref.key == ref.sha256 and ref.size > 0
    if summary is not None:
        assert ref.summary == summary
    back = _io.load(blobs, ref)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value)
    elif isinstance(value, np.ndarray):
        assert back.tolist() == value.tolist()
    elif isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value


def test_an_estimator_is_stored_with_skops(blobs) -> None:
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    ref = _io.store(blobs, "return", model)
    assert ref.format == "skops"
    assert ref.summary == "LogisticRegression()"
    back = _io.load(blobs, ref)
    assert back.predict([[0.0], [3.0]]).tolist() == [0, 1]
    assert blobs.get_bytes(ref.sha256)[:2] == b"PK"  # a skops zip


def test_a_missing_or_mismatched_blob_is_refused(blobs) -> None:
    ref = _io.store(blobs, "return", [1, 2])
    missing = OutputRef("return", "0" * 64, "0" * 64, "pickle", 3, "x")
    with pytest.raises(NotFound):
        _io.load(blobs, missing)
    assert "NotFound" in (_io.verify(blobs, missing) or "")
    other = _io.store(blobs, "return", [3])
    swapped = OutputRef("return", other.key, ref.sha256, "json", 3, "x")
    with pytest.raises(IntegrityViolation, match="names blob"):
        _io.load(blobs, swapped)
    bogus = OutputRef("return", "../etc", "../etc", "pickle", 3, "x")
    assert _io.verify(blobs, bogus) is not None


def test_value_hashes_are_canonical() -> None:
    assert _io.value_hash({"a": 1, "b": 2}) == _io.value_hash({"b": 2, "a": 1})
    assert _io.value_hash([1, 2]) != _io.value_hash([2, 1])
    assert _io.value_hash("1") != _io.value_hash(1)
    df = pd.DataFrame({"a": [1]})
    assert _io.value_hash(df) == _io.value_hash(df.copy())
