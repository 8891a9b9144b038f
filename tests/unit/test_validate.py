"""The shared argument checks: one rule per kind of value, said the same way everywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost import _validate as check
from milepost.errors import InvalidInput

CONTROL = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]] + [
    "\u2028",
    "\u2029",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
]


@pytest.mark.parametrize("bad", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_a_name_refuses_every_control_character(bad: str) -> None:
    with pytest.raises(InvalidInput, match=r"control character|NUL"):
        check.name(f"a{bad}b", "Model name")


@pytest.mark.parametrize("bad", ["\ud800", "\udfff", "x\udc80"])
def test_a_name_refuses_lone_surrogates(bad: str) -> None:
    with pytest.raises(InvalidInput, match="lone surrogate"):
        check.name(bad, "Dataset name")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, r"must be a string, got None \(NoneType\)"),
        (3, "must be a string"),
        (b"churn", "must be a string"),
        ("", "is empty"),
        ("a" * 257, "257 characters long; the limit is 256"),
    ],
)
def test_a_name_is_non_empty_text_of_bounded_length(value: object, reason: str) -> None:
    with pytest.raises(InvalidInput, match=f"^Model name {reason}" if "must" in reason else reason):
        check.name(value, "Model name")


def test_a_name_keeps_unicode_letters_and_a_kinds_own_alphabet() -> None:
    assert check.name("Ünïcode 名前 ✓", "Run name") == "Ünïcode 名前 ✓"
    pattern = re.compile(r"[a-z]+")
    assert check.name("churn", "Alias", pattern=pattern) == "churn"
    with pytest.raises(InvalidInput, match="Alias 'Churn' is invalid: lowercase only"):
        check.name("Churn", "Alias", pattern=pattern, rule="lowercase only")


@given(st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"])))
def test_names_without_controls_pass_unchanged(text: str) -> None:
    if not text or len(text) > 256 or check.unsafe_char(text) is not None:
        return
    assert check.name(text, "Run name") == text


def test_free_text_may_hold_newlines_but_not_nul_or_surrogates() -> None:
    assert check.text("line 1\nline 2\ttab", "reason") == "line 1\nline 2\ttab"
    with pytest.raises(InvalidInput, match="NUL"):
        check.text("a\x00b", "reason")
    with pytest.raises(InvalidInput, match="lone surrogate"):
        check.text("a\ud800", "reason")
    assert check.optional_text(None, "reason") is None


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, -(2**63), np.int64(5), np.uint8(3)])
def test_integers_within_int64_pass(value: object) -> None:
    assert check.integer(value, "step") == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2**63, "from -9223372036854775808 to 9223372036854775807"),
        (-(2**63) - 1, "from"),
        (10**400, "an integer of 401 digits"),
        (True, r"must be an integer, got True \(bool\)"),
        (1.0, "must be an integer"),
        ("1", "must be an integer"),
        (None, "must be an integer"),
    ],
)
def test_integers_out_of_range_or_of_another_type(value: object, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        check.integer(value, "step")


def test_integer_ranges_are_stated() -> None:
    with pytest.raises(InvalidInput, match="version must be at least 1"):
        check.integer(0, "version", minimum=1)
    with pytest.raises(InvalidInput, match="from 1 to 64"):
        check.integer(65, "replicas", minimum=1, maximum=64)


def test_booleans_are_not_truthiness() -> None:
    assert check.boolean(np.bool_(True), "nested") is True
    for value in (1, "yes", None, pd.DataFrame()):
        with pytest.raises(InvalidInput, match="must be True or False"):
            check.boolean(value, "nested")


def test_moments_need_a_time_zone_and_a_range() -> None:
    assert check.timestamp_ms(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "at") == 1000
    assert check.timestamp_ms(np.int64(5), "at") == 5
    with pytest.raises(InvalidInput, match="has no time zone"):
        check.timestamp_ms(datetime(2026, 1, 1), "at")
    for bad in (None, "2026-01-01", 1.5, 2**70):
        with pytest.raises(InvalidInput, match=r"^at "):
            check.timestamp_ms(bad, "at")


def test_paths(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert check.local_path(tmp_path / "f", "local_path", kind="file") == tmp_path / "f"
    assert check.local_path(str(tmp_path), "dst", kind="new_dir") == tmp_path
    assert check.local_path(tmp_path / "new" / "dir", "dst", kind="new_dir")
    cases = [
        (None, "any", "must be a path"),
        (b"/tmp", "any", "must be a path"),
        ("a\x00b", "any", "NUL"),
        ("a\ud800", "any", "cannot be encoded"),
        ("", "any", "is empty"),
        (tmp_path, "file", "is not a file: it is a directory"),
        (tmp_path / "f", "dir", "is not a directory: it is a file"),
        (tmp_path / "missing", "file", "it is missing"),
        (tmp_path / "f", "new_dir", "is a file, not a directory"),
        (tmp_path / "f" / "below", "new_dir", "/f is a file, not a directory"),
        (tmp_path / ("n" * 300), "file", "File name too long"),
    ]
    for value, kind, reason in cases:
        with pytest.raises(InvalidInput, match=reason):
            check.local_path(value, "dst", kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "table",
    [
        pd.DataFrame([[1, 2]], columns=["x", "x"]),
        pd.DataFrame({0: [1], "0": [2]}),
        pa.table([pa.array([1]), pa.array([2])], names=["x", "x"]),
    ],
    ids=["pandas", "as-text", "arrow"],
)
def test_duplicate_column_names_are_refused(table: object) -> None:
    with pytest.raises(InvalidInput, match=r"duplicate column names: '(x|0)'"):
        check.unique_columns(table, "The data")


def test_tables_with_unique_columns_and_other_things_pass() -> None:
    for value in (pd.DataFrame({"x": [1], "y": [2]}), "churn@1", None, [{"x": 1}], 3):
        check.unique_columns(value, "The data")


def test_string_lists_and_mappings() -> None:
    assert check.string_list(("a", "b"), "slices") == ["a", "b"]
    assert check.string_list("a", "order_by", allow_str=True) == ["a"]
    for bad in ("a", [1], None, {"a"}):
        with pytest.raises(InvalidInput, match="slices must"):
            check.string_list(bad, "slices")
    with pytest.raises(InvalidInput, match=r"tags must be a mapping \(a dict\), got"):
        check.mapping([("a", 1)], "tags")


def test_command_line_times() -> None:
    import typer

    from milepost.cli._params import when_ms

    now = 1_800_000_000_000
    assert when_ms(None, "--since") is None
    assert when_ms("2h", "--since", now_ms=now) == now - 2 * 3600 * 1000
    assert when_ms("1.5d", "--since", now_ms=now) == now - 36 * 3600 * 1000
    assert when_ms("90s", "--since", now_ms=now) == now - 90_000
    assert when_ms("1970-01-02", "--since") == 86_400_000
    assert when_ms("1970-01-01T01:00+01:00", "--since") == 0
    for bad in ("yesterday", "2h ago", "-3d", "d"):
        with pytest.raises(typer.BadParameter, match="is not a time"):
            when_ms(bad, "--since")
