from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from milepost.errors import InvalidFilter
from milepost.tracking._filter import (
    MAX_CLAUSES,
    MAX_JOINED_KEYS,
    MAX_LENGTH,
    MAX_VALUES,
    Comparison,
    check_search_size,
    parse_filter,
    parse_order_by,
)
from milepost.tracking.backends._search import filter_error


def test_parses_all_entities_and_operators() -> None:
    got = parse_filter(
        "metrics.acc >= 0.9 AND params.model = 'gbm' and tags.team != \"a b\" "
        "AND status IN ('finished', 'FAILED') AND metrics.`val loss` < 1e-3 "
        "AND run_name LIKE 'hgb%' AND params.lr NOT IN ('0.1') AND start_time > 5"
    )
    assert [(c.entity, c.key, c.op, c.value) for c in got] == [
        ("metric", "acc", ">=", 0.9),
        ("param", "model", "=", "gbm"),
        ("tag", "team", "!=", "a b"),
        ("attribute", "status", "IN", ("finished", "FAILED")),
        ("metric", "val loss", "<", 0.001),
        ("attribute", "run_name", "LIKE", "hgb%"),
        ("param", "lr", "NOT IN", ("0.1",)),
        ("attribute", "start_time", ">", 5.0),
    ]


def test_empty_filter_is_no_condition() -> None:
    assert parse_filter(None) == [] and parse_filter("  ") == []


@pytest.mark.parametrize(
    ("text", "position", "token"),
    [
        ("metrics.acc >> 0.5", 13, ">"),
        ("metrics.acc > 0.5 AND bogus = 'x'", 22, "bogus"),
        ("metrics.acc > 0.5 OR metrics.acc < 0.1", 18, "OR"),
        ("metrics.acc > 'high'", 12, ">"),
        ("params.lr > 0.1", 10, ">"),
        ("metrics.acc > 0.5 metrics.loss < 1", 18, "metrics.loss"),
        ("metrics.acc IN (1, 2", 20, ""),
        ("status = 'DONE'", 7, "="),
        ("metrics.acc > ", 14, ""),
        ("metrics.acc ; DROP TABLE runs", 12, ";"),
    ],
)
def test_errors_point_at_the_offending_token(text: str, position: int, token: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text)
    assert info.value.details["position"] == position
    assert info.value.details["token"].startswith(token)
    assert f"character {position + 1}" in info.value.message


def test_unknown_attribute_suggests() -> None:
    with pytest.raises(InvalidFilter, match="start_time"):
        parse_filter("start_tme > 3")


def test_order_by() -> None:
    terms = parse_order_by(["metrics.acc DESC", "params.model", "start_time asc"])
    assert [(t.entity, t.key, t.descending) for t in terms] == [
        ("metric", "acc", True),
        ("param", "model", False),
        ("attribute", "start_time", False),
    ]
    assert parse_order_by("metrics.`val loss` DESC, run_name")[0].key == "val loss"
    with pytest.raises(InvalidFilter):
        parse_order_by(["metrics.acc DESC; DROP"])


_keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_numbers = st.floats(allow_nan=False, allow_infinity=False, width=32)
_strings = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("metrics"),
                _keys,
                st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
                _numbers,
            ),
            st.tuples(
                st.sampled_from(["params", "tags"]),
                _keys,
                st.sampled_from(["=", "!=", "LIKE"]),
                _strings,
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_rendered_filters_parse_back(parts: list[tuple[str, str, str, object]]) -> None:
    def lit(v: object) -> str:
        if isinstance(v, str):
            return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"
        return repr(float(v))  # type: ignore[arg-type]

    text = " AND ".join(f"{p}.{k} {op} {lit(v)}" for p, k, op, v in parts)
    parsed = parse_filter(text)
    expected = [
        Comparison(
            {"metrics": "metric", "params": "param", "tags": "tag"}[p],
            k,
            op,
            float(v) if p == "metrics" else v,
            0,
        )  # type: ignore[arg-type]
        for p, k, op, v in parts
    ]
    assert [(c.entity, c.key, c.op, c.value) for c in parsed] == [
        (c.entity, c.key, c.op, c.value) for c in expected
    ]


# -- size limits: refused up front, before any SQL is built ------------------------------


def test_a_filter_with_too_many_clauses_is_invalid() -> None:
    assert len(parse_filter(" AND ".join(["metrics.acc > 0.1"] * MAX_CLAUSES))) == MAX_CLAUSES
    with pytest.raises(InvalidFilter, match=r"1200 comparisons; at most 100") as info:
        parse_filter(" AND ".join(["metrics.acc > 0.1"] * 1200))
    assert info.value.details["limit"] == MAX_CLAUSES


def test_too_many_values_or_characters_are_invalid() -> None:
    many = ", ".join(str(i) for i in range(MAX_VALUES + 1))
    with pytest.raises(InvalidFilter, match=rf"{MAX_VALUES + 1} values; at most {MAX_VALUES}"):
        parse_filter(f"metrics.acc IN ({many})")
    with pytest.raises(InvalidFilter, match=r"characters long; at most"):
        parse_filter("params.p = '" + "x" * MAX_LENGTH + "'")


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("params.p = 'a\x00b'", "NUL"),
        ("params.p = '\ud800'", "not valid Unicode"),
        (3.5, "a string"),
        (["metrics.acc > 1"], "a string"),
    ],
)
def test_filters_that_no_database_can_take_are_invalid(source: object, match: str) -> None:
    with pytest.raises(InvalidFilter, match=match):
        parse_filter(source)  # type: ignore[arg-type]


def test_too_many_joined_keys_across_filter_and_order_are_invalid() -> None:
    keys = [f"params.p{i} = 'x'" for i in range(MAX_JOINED_KEYS)]
    comparisons = parse_filter(" AND ".join(keys))
    check_search_size(comparisons, parse_order_by(["metrics.p0 DESC", "start_time"])[1:])
    check_search_size(comparisons, parse_order_by(["params.p0"]))  # the same key: one join
    with pytest.raises(InvalidFilter, match=rf"{MAX_JOINED_KEYS + 1} different metrics, params"):
        check_search_size(comparisons, parse_order_by(["metrics.acc DESC"]))
    with pytest.raises(InvalidFilter, match="order_by"):
        parse_order_by(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidFilter, match="order_by"):
        parse_order_by([None])  # type: ignore[list-item]


def _sqlite_error(sql: str) -> sa.exc.DBAPIError:
    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    except sa.exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{sql[:40]} did not fail")


class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def test_only_errors_caused_by_the_filter_become_invalid_filter() -> None:
    deep = _sqlite_error("SELECT 1 WHERE " + " AND ".join(["1 = 1"] * 1200))
    assert isinstance(filter_error(deep), InvalidFilter)
    assert filter_error(_sqlite_error("SELECT * FROM no_such_table")) is None
    assert isinstance(filter_error(RecursionError()), InvalidFilter)
    for message, state, blamed in [
        ("stack depth limit exceeded", "54001", True),
        ("LIKE pattern must not end with escape character", "22025", True),
        ("sorry, too many clients already", "53300", False),
        ("canceling statement due to statement timeout", "57014", False),
        ("connection to server was lost", "08006", False),
    ]:
        kind = sa.exc.DataError if state.startswith("22") else sa.exc.OperationalError
        exc = kind("SELECT ...", {}, _PgError(message, state))
        assert isinstance(filter_error(exc), InvalidFilter) is blamed, message
