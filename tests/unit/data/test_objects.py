"""The data package's objects: short reprs, JSON-ready dicts, readable numbers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from milepost.data import (
    Between,
    CheckResult,
    ColumnSchema,
    DatasetDiff,
    DatasetInput,
    DatasetVersion,
    NotNull,
    RowCount,
    Suite,
    ValidationResult,
)
from milepost.data._format import human_duration
from milepost.data.backends.sql import DatasetRow


def _version(version: int = 3, **changes: Any) -> DatasetVersion:
    fields: dict[str, Any] = {
        "name": "customers",
        "version": version,
        "content_hash": "1a2b3c4d5e6f7a8b9c0d" * 3 + "abcd",
        "schema": [ColumnSchema("plan", "large_string", True), ColumnSchema("age", "int64", True)],
        "num_rows": 2000,
        "num_files": 1,
        "size_bytes": 12_345,
        "source_uri": None,
        "description": None,
        "profile": {
            "plan": {"kind": "categorical", "distinct": 3, "top": [{"value": "a", "count": 9}] * 5},
            "age": {"kind": "numeric", "mean": 41.0, "quantiles": {str(q): q for q in range(7)}},
        },
        "created_by": "me",
        "created_at": 1,
        "files": ["f" * 64],
        "version_id": 17,
    }
    return DatasetVersion(**(fields | changes))


def test_reprs_are_short() -> None:
    v = _version()
    assert repr(v) == "DatasetVersion(customers@3, 2,000 rows, sha 1a2b3c4d5e6f...)"
    assert repr(ColumnSchema("age", "int64", False)) == "ColumnSchema(age: int64, not null)"
    assert repr(DatasetInput("r" * 32, "customers@3", "train", "h", 1)) == (
        "DatasetInput(customers@3 as 'train' by run rrrrrrrrrrrr)"
    )
    assert (
        repr(DatasetRow("customers", None, "me", 1, 3, 3)) == "DatasetRow(customers@3, 3 versions)"
    )
    assert repr(NotNull(column="age")) == "NotNull(column='age')"
    suite = Suite(name="s", checks=[NotNull(column="age"), RowCount(min=10)])
    assert repr(suite) == "Suite('s', 2 checks: not_null, row_count)"
    check = CheckResult(
        "age in range",
        "between",
        False,
        {"failing_rows": 3, "rows": 10},
        "x",
        summary="3 of 10 rows (30.00%) fail: age >= 18",
    )
    assert repr(check) == "CheckResult(age in range: FAIL, 3 of 10 rows (30.00%) fail: age >= 18)"
    result = ValidationResult("id", "s", "h", False, [check], 10, 1, "me", dataset_ref="c@1")
    assert repr(result) == (
        "ValidationResult(suite 's' on c@1: FAILED, 0 passed, 1 failed of 1 check, 10 rows)"
    )


def test_to_dict_is_json_and_follows_the_fields() -> None:
    v = _version()
    d = v.to_dict()
    assert list(d)[:4] == ["name", "version", "ref", "content_hash"]
    assert "version_id" not in d and "_loader" not in d and d["hash_version"] == 2
    assert d["schema"][0] == {"name": "plan", "type": "large_string", "nullable": True}
    json.dumps(d)
    suite = Suite(name="s", checks=[Between(column="age", min=18)])
    assert suite.to_dict() == {
        "name": "s",
        "checks": [
            {"kind": "between", "column": "age", "mostly": 1.0, "min": 18.0, "strict": False}
        ],
    }
    assert Suite.from_dict(suite.to_dict()) == suite
    row = DatasetRow("customers", None, "me", 1, 3, 3)
    assert row.to_dict()["latest_version"] == 3


def test_results_stored_before_summaries_still_read() -> None:
    old = {
        "name": "age in range",
        "kind": "between",
        "column": "age",
        "success": False,
        "observed": "3 of 10 rows fail",
        "expected": "age in [18, inf]",
        "failing_rows": 3,
        "failing_fraction": 0.3,
        "examples": [],
        "message": "3 rows (30.00%) fail: age in [18, inf]",
    }
    c = CheckResult.from_dict(old)
    assert c.summary == old["message"]
    assert CheckResult.from_dict({**old, "success": True, "message": ""}).summary == (
        "3 of 10 rows fail"
    )


def test_diff_between_versions_lists_only_visible_changes() -> None:
    a = _version(1)
    b = _version(
        2,
        content_hash="f" * 64,
        schema=[ColumnSchema("plan", "string", True), ColumnSchema("age", "double", True)],
        profile={
            "plan": {"distinct_approx": 3},  # a profile from before exact counts
            "age": {"mean": 41.0000000001},
        },
    )
    d = DatasetDiff.between(a, b)
    assert d.retyped == [("age", "int64", "double")]
    assert d.stats == {}
    assert repr(d) == "DatasetDiff(customers@1 -> customers@2: rows 2,000 -> 2,000, 1 retyped)"
    assert d.to_dict()["columns_retyped"] == [{"name": "age", "from": "int64", "to": "double"}]


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=212, hours=22, minutes=34, seconds=18.897), "212 days 22 h"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=5, minutes=12, seconds=3), "5 h 12 min"),
        (timedelta(minutes=12, seconds=5), "12 min 5 s"),
        (timedelta(seconds=42.4), "42 s"),
        (timedelta(seconds=0.25), "0.25 s"),
        (timedelta(seconds=59.7), "1 min"),
        (timedelta(hours=-3), "3 h"),
    ],
)
def test_durations_read_in_human_units(delta: timedelta, text: str) -> None:
    assert human_duration(delta) == text
