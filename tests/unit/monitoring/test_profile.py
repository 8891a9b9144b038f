"""The reference profile: kinds, what each column keeps, a size that does not grow with
the rows, and a JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milepost.errors import InvalidInput
from milepost.monitoring import ColumnProfile, Profile, profile
from milepost.monitoring.profiles import MAX_CATEGORIES, OTHER, QUANTILES
from milepost.monitoring.stats import bin_counts, psi_bins


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(10, 2, n),
            "k": rng.integers(0, 3, n),
            "flag": rng.random(n) < 0.3,
            "city": rng.choice(["oslo", "lima", "pune"], n),
            "tier": pd.Categorical(rng.choice(["a", "b"], n)),
            "ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 86400, n), "s"),
        }
    )


def test_kinds_follow_dtypes_and_categorical_forces() -> None:
    p = profile(_frame(500), categorical=["k"])
    kinds = {name: c.kind for name, c in p.columns.items()}
    assert kinds == {
        "x": "numeric",
        "k": "categorical",
        "flag": "categorical",
        "city": "categorical",
        "tier": "categorical",
        "ts": "numeric",
    }
    assert p.rows == 500
    assert set(p.columns["flag"].categories) <= {"True", "False"}
    assert profile(_frame(50)).columns["k"].kind == "numeric"


def test_numeric_column_keeps_quantiles_psi_bins_and_moments() -> None:
    df = _frame(2_000)
    df.loc[:9, "x"] = np.nan
    df.loc[10, "x"] = np.inf
    c = profile(df).columns["x"]
    finite = df["x"][np.isfinite(df["x"])].to_numpy()
    assert (c.count, c.nulls) == (1_989, 11)  # NaN and infinities count as nulls
    assert len(c.quantiles) == QUANTILES
    np.testing.assert_allclose(c.quantiles, np.quantile(finite, np.linspace(0, 1, QUANTILES)))
    # PSI bins are stats.psi_bins's, with the same counts as stats.bin_counts
    np.testing.assert_allclose(c.edges, psi_bins(finite))
    assert c.counts == bin_counts(finite, np.array(c.edges)).tolist()
    assert c.mean == pytest.approx(finite.mean())
    assert c.std == pytest.approx(finite.std())
    assert (c.min, c.max) == (finite.min(), finite.max())


def test_integral_floats_and_ints_are_one_category() -> None:
    a = profile(pd.DataFrame({"c": [1, 2, 2]}), categorical=["c"]).columns["c"]
    b = profile(pd.DataFrame({"c": [1.0, 2.0, None]}), categorical=["c"]).columns["c"]
    assert a.categories == {"2": 2.0, "1": 1.0}
    assert b.categories == {"1": 1.0, "2": 1.0}
    assert (b.count, b.nulls) == (2, 1)


def test_categories_beyond_the_cap_are_pooled_under_other() -> None:
    values = [f"v{i}" for i in range(MAX_CATEGORIES + 50)] + ["v0"] * 10
    c = profile(pd.DataFrame({"c": values})).columns["c"]
    assert len(c.categories) == MAX_CATEGORIES + 1
    assert c.categories["v0"] == 11
    assert c.categories[OTHER] == 50
    assert sum(c.categories.values()) == c.count == len(values)
    assert c.capped


@pytest.mark.parametrize("rows", [1_000, 100_000])
def test_profile_size_does_not_grow_with_rows(rows: int) -> None:
    size = len(json.dumps(profile(_frame(rows)).to_dict()))
    assert size < 150_000  # 2 numeric columns x 1,001 quantiles dominate; no raw values


def test_size_is_the_same_at_1k_and_100k_rows_within_rounding() -> None:
    small = len(json.dumps(profile(_frame(1_000)).to_dict()))
    large = len(json.dumps(profile(_frame(100_000, seed=1)).to_dict()))
    assert 0.8 < large / small < 1.25


def test_round_trip_through_json() -> None:
    df = _frame(300)
    df["empty"] = np.nan
    p = profile(df)
    back = Profile.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False)))
    assert back == p
    assert back.columns["empty"].mean is None
    assert back.columns["empty"].count == 0


@settings(deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)), min_size=0, max_size=50),
    st.lists(st.sampled_from(["a", "b", "c", None]), min_size=0, max_size=50),
)
def test_round_trip_property(nums: list[float | None], cats: list[str | None]) -> None:
    n = min(len(nums), len(cats))
    df = pd.DataFrame({"n": pd.array(nums[:n], dtype="Float64"), "c": cats[:n]})
    p = profile(df)
    assert Profile.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False))) == p
    for c in p.columns.values():
        assert c.count + c.nulls == n


def test_bad_input_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput, match="DataFrame"):
        profile([1, 2, 3])
    with pytest.raises(InvalidInput, match="lacks: nope"):
        profile(_frame(10), categorical=["nope"])
    with pytest.raises(InvalidInput, match="duplicate"):
        profile(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(InvalidInput, match="Not a profile"):
        Profile.from_dict({"columns": []})
    with pytest.raises(InvalidInput, match="Not a column profile"):
        Profile.from_dict({"rows": 1, "columns": [{"name": "x", "kind": "weird"}]})
    with pytest.raises(InvalidInput, match="edges"):
        ColumnProfile.from_dict(
            {"name": "x", "kind": "numeric", "count": 3, "nulls": 0, "edges": [1.0], "counts": []}
        )
    with pytest.raises(InvalidInput, match="no quantiles"):
        ColumnProfile.from_dict(
            {"name": "x", "kind": "numeric", "count": 3, "nulls": 0, "edges": [], "counts": [3]}
        )
    with pytest.raises(InvalidInput, match="format"):
        Profile.from_dict({"format": 99, "rows": 0, "columns": []})
