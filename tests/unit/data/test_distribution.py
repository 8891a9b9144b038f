"""The ``distribution`` check computes its figures with :mod:`milepost.monitoring.stats`
(one implementation of PSI and KS), run by DuckDB over real tables."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from milepost.data.validation import CheckContext, Distribution
from milepost.errors import InvalidInput
from milepost.monitoring import ks_test, psi_from_samples


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


def _context(
    con: duckdb.DuckDBPyConnection, current: pa.Table, reference: pa.Table
) -> CheckContext:
    con.register("data", current)
    con.register("ref", reference)
    return CheckContext(
        con=con,
        schema=current.schema,
        num_rows=current.num_rows,
        now=datetime.now(UTC),
        reference=lambda name: "ref",
    )


def test_categories_are_compared_by_categorical_psi(con: duckdb.DuckDBPyConnection) -> None:
    ref = pa.table({"plan": ["a"] * 50 + ["b"] * 50})
    cur = pa.table({"plan": ["a"] * 90 + ["b"] * 10})
    result = Distribution(column="plan", reference="ds@1").run(_context(con, cur, ref))
    assert result.observed == {"psi": round(0.4 * math.log(9), 6)}
    assert not result.success
    assert result.summary == "plan distribution vs ds@1: PSI 0.879 > 0.2"


def test_a_null_is_a_category(con: duckdb.DuckDBPyConnection) -> None:
    ref = pa.table({"plan": ["a"] * 50 + [None] * 50})
    cur = pa.table({"plan": ["a"] * 90 + [None] * 10})
    result = Distribution(column="plan", reference="ds@1").run(_context(con, cur, ref))
    assert result.observed == {"psi": round(0.4 * math.log(9), 6)}


def test_numbers_use_psi_from_samples_and_ks(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(5)
    ref_values, cur_values = rng.normal(size=2000), rng.normal(0.3, 1, 1500)
    ctx = _context(con, pa.table({"x": cur_values}), pa.table({"x": ref_values}))
    result = Distribution(column="x", reference="ds@1", bins=5).run(ctx)
    # the samples are the whole columns (under the 200,000-row cap), in another order
    expected = psi_from_samples(ref_values, cur_values, 5)
    assert result.observed == {"psi": pytest.approx(round(expected, 6), abs=1e-12)}
    ks = Distribution(column="x", reference="ds@1", method="ks").run(ctx)
    pinned = ks_test(ref_values, cur_values)
    assert ks.observed["ks_statistic"] == round(pinned.statistic, 6)
    assert ks.observed["pvalue"] == pytest.approx(pinned.pvalue, rel=1e-9)
    assert not ks.success


def test_nothing_to_compare_is_a_clear_error(con: duckdb.DuckDBPyConnection) -> None:
    empty = pa.table({"plan": pa.array([], pa.string())})
    full = pa.table({"plan": ["a", "b"]})
    with pytest.raises(InvalidInput, match="no values to compare"):
        Distribution(column="plan", reference="ds@1").run(_context(con, full, empty))
    with pytest.raises(InvalidInput, match="KS test needs a numeric column"):
        Distribution(column="plan", reference="ds@1", method="ks").run(_context(con, full, full))
