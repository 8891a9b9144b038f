"""The drift statistics (PSI, KS): properties, and values pinned against hand-computed
figures and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from milepost.monitoring import (
    PSI_EPS,
    align_counts,
    bin_counts,
    ks_test,
    psi,
    psi_bins,
    psi_categorical,
    psi_from_samples,
)

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=20).filter(
    lambda xs: sum(xs) > 0
)


@settings(deadline=None)  # a loaded CI machine is slow, not wrong
@given(counts)
def test_psi_of_a_distribution_with_itself_is_zero(c: list[int]) -> None:
    assert psi(c, c) == pytest.approx(0.0, abs=1e-12)


@settings(deadline=None)
@given(st.data())
def test_psi_is_non_negative_and_symmetric(data: st.DataObject) -> None:
    a = data.draw(counts)
    b = data.draw(
        st.lists(st.integers(0, 10_000), min_size=len(a), max_size=len(a)).filter(
            lambda xs: sum(xs) > 0
        )
    )
    assert psi(a, b) >= -1e-12
    assert psi(a, b) == pytest.approx(psi(b, a), rel=1e-9, abs=1e-12)


def test_psi_is_scale_invariant_and_grows_with_shift() -> None:
    assert psi([1, 2, 3], [10, 20, 30]) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    small = psi_from_samples(ref, rng.normal(0.1, 1, 20_000))
    large = psi_from_samples(ref, rng.normal(1.0, 1, 20_000))
    assert 0 < small < 0.1
    assert large > 0.25


def test_psi_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        psi([0, 0], [1, 1])
    with pytest.raises(ValueError, match="negative"):
        psi([1, -1], [1, 1])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=200))
def test_ks_against_itself_finds_no_difference(values: list[float]) -> None:
    result = ks_test(values, values)
    assert result.statistic == pytest.approx(0.0)
    assert result.pvalue == pytest.approx(1.0)


def test_ks_detects_a_shift() -> None:
    rng = np.random.default_rng(1)
    assert ks_test(rng.normal(size=5000), rng.normal(0.5, 1, 5000)).pvalue < 1e-6


# -- pinned values -------------------------------------------------------------------------


def test_psi_matches_the_formula_by_hand() -> None:
    # e = (.5, .5), a = (.9, .1): 0.4 ln(1.8) + (-0.4) ln(0.2) = 0.4 ln 9
    assert psi([50, 50], [90, 10]) == pytest.approx(0.4 * math.log(9), rel=1e-12)
    assert psi([50, 50], [90, 10]) == pytest.approx(0.8788898309344878, rel=1e-12)
    # proportions are accepted as well as counts
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * math.log(9), rel=1e-12)


def test_an_empty_bin_is_floored_at_eps_and_renormalised() -> None:
    e = np.array([1.0, PSI_EPS]) / (1 + PSI_EPS)  # (100, 0): the empty bin gets eps
    a = np.array([0.5, 0.5])
    by_hand = float(np.sum((a - e) * np.log(a / e)))
    assert psi([100, 0], [50, 50]) == pytest.approx(by_hand, rel=1e-12)
    assert psi([100, 0], [50, 50]) == pytest.approx(4.60424924, rel=1e-8)
    # a larger floor bounds the contribution of an empty bin more tightly
    assert psi([100, 0], [50, 50], eps=0.01) < psi([100, 0], [50, 50])


def test_numbers_are_binned_at_reference_quantiles_upper_edge_inclusive() -> None:
    edges = psi_bins([1, 2, 2, 3], n_bins=2)
    assert edges.tolist() == [2.0]
    # [.., 2) and [2, ..): a value on an edge goes to the bin above it
    assert bin_counts([1, 2, 2, 3], edges).tolist() == [1.0, 3.0]
    # outer bins are open-ended; NaN and infinities are ignored
    assert bin_counts([-100, 100, np.nan, np.inf], edges).tolist() == [1.0, 1.0]
    # duplicate quantiles collapse: a constant reference has one inner edge
    assert psi_bins([5.0] * 100).tolist() == [5.0]
    assert psi_bins([np.nan, np.inf]).size == 0
    with pytest.raises(ValueError, match="at least 2 bins"):
        psi_bins([1, 2, 3], n_bins=1)


def test_psi_from_samples_by_hand() -> None:
    # reference 0..9, 2 bins: edge at the median 4.5, 5 | 5; current 3 | 5
    value = psi_from_samples(range(10), [0, 1, 2, 10, 11, 12, 13, 14], n_bins=2)
    assert value == pytest.approx(0.125 * math.log(5 / 3), rel=1e-12)


def test_psi_from_samples_uses_deciles_by_default() -> None:
    ref = np.arange(1000, dtype=float)
    edges = psi_bins(ref)
    assert edges.size == 9
    np.testing.assert_allclose(edges, np.quantile(ref, np.arange(1, 10) / 10))
    assert psi_from_samples(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_categories_are_the_union_of_both_sides() -> None:
    keys, ref, cur = align_counts({"a": 50, "b": 50}, {"b": 10, "c": 5, "a": 90})
    assert keys == ["a", "b", "c"]
    assert ref.tolist() == [50.0, 50.0, 0.0]
    assert cur.tolist() == [90.0, 10.0, 5.0]
    assert psi_categorical({"a": 50, "b": 50}, {"b": 10, "a": 90}) == pytest.approx(
        0.4 * math.log(9), rel=1e-12
    )
    # null is a category like any other
    assert psi_categorical({None: 5, "x": 5}, {None: 5, "x": 5}) == pytest.approx(0.0, abs=1e-15)
    assert psi_categorical({None: 9, "x": 1}, {None: 1, "x": 9}) > 1
    with pytest.raises(ValueError, match="at least one"):
        psi_categorical({}, {"a": 1})


def test_ks_matches_scipy_and_the_cdf_gap_by_hand() -> None:
    result = ks_test([1, 2, 3, 4], [3, 4, 5, 6])
    assert result.statistic == 0.5  # at x = 2: F_ref = 0.5, F_cur = 0
    expected = scipy.stats.ks_2samp([1, 2, 3, 4], [3, 4, 5, 6])
    assert result.pvalue == expected.pvalue
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=3000), rng.normal(0.1, 1, 2000)
    pinned = scipy.stats.ks_2samp(a, b)
    got = ks_test(np.append(a, np.nan), b)  # NaN ignored
    assert (got.statistic, got.pvalue) == (pinned.statistic, pinned.pvalue)


def test_ks_rejects_an_empty_side() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        ks_test([np.nan], [1.0, 2.0])


def test_the_old_module_still_reexports_the_statistics() -> None:
    import milepost.stats

    assert milepost.stats.psi is psi
    assert milepost.stats.ks_test is ks_test
    assert milepost.stats.psi_from_samples is psi_from_samples


def test_the_package_loads_names_on_first_use() -> None:
    from milepost import monitoring

    assert monitoring.psi is psi
    assert set(monitoring.__all__) <= set(dir(monitoring))
    with pytest.raises(AttributeError, match="no_such_statistic"):
        monitoring.no_such_statistic  # type: ignore[attr-defined]  # noqa: B018
