"""The drift statistics beyond PSI: KS from sorted arrays, Wasserstein (normalised),
Jensen-Shannon, chi-square of homogeneity. Pinned against SciPy, property-tested, and the
hypothesis tests' false-alarm rate checked on seeded no-drift data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from milepost.monitoring import chi_square, jensen_shannon, js_categorical, wasserstein
from milepost.monitoring.stats import (
    ks_from_quantiles,
    ks_pvalue,
    ks_sorted,
    sorted_quantiles,
)

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=20).filter(
    lambda xs: sum(xs) > 0
)
samples = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=60
).filter(lambda xs: np.std(xs) > 1e-3)


def test_sorted_quantiles_match_numpy() -> None:
    rng = np.random.default_rng(3)
    for values in (rng.normal(size=1001), rng.integers(0, 4, 999).astype(float), np.ones(5)):
        s = np.sort(values)
        probs = np.linspace(0, 1, 1001)
        np.testing.assert_allclose(
            sorted_quantiles(s, probs), np.quantile(values, probs), rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("sizes", [(300, 200), (12_000, 15_000)])
def test_ks_sorted_matches_scipy(sizes: tuple[int, int]) -> None:
    rng = np.random.default_rng(4)
    a, b = np.sort(rng.normal(size=sizes[0])), np.sort(rng.normal(0.03, 1, sizes[1]))
    got, want = ks_sorted(a, b), scipy.stats.ks_2samp(a, b)
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.pvalue == pytest.approx(want.pvalue, rel=1e-9)


def test_ks_and_wasserstein_handle_ties_like_scipy() -> None:
    rng = np.random.default_rng(9)
    a = np.sort(rng.integers(0, 6, 15_000).astype(float))
    b = np.sort(rng.integers(1, 7, 12_000).astype(float))
    got, want = ks_sorted(a, b), scipy.stats.ks_2samp(a, b)
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.pvalue == pytest.approx(want.pvalue, rel=1e-6, abs=1e-300)
    assert wasserstein(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b) / a.std())


def test_ks_pvalue_is_scipys_asymptotic_one() -> None:
    want = scipy.stats.ks_2samp(np.arange(20_000.0), np.arange(20_000.0) + 300, method="asymp")
    assert ks_pvalue(want.statistic, 20_000, 20_000) == pytest.approx(want.pvalue, rel=1e-9)


def test_ks_from_quantiles_is_close_to_the_exact_statistic() -> None:
    rng = np.random.default_rng(5)
    ref, cur = np.sort(rng.normal(size=50_000)), np.sort(rng.normal(0.05, 1.1, 8_000))
    q = sorted_quantiles(ref, np.linspace(0, 1, 1001))
    exact = scipy.stats.ks_2samp(ref, cur).statistic
    assert ks_from_quantiles(q, cur) == pytest.approx(exact, abs=2e-3)


def test_wasserstein_is_scipys_distance_over_the_reference_std() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(2, 3, 5_000), rng.exponential(2, 4_000)
    want = scipy.stats.wasserstein_distance(a, b) / np.std(a)
    assert wasserstein(a, b) == pytest.approx(want, rel=1e-9)
    # a mean shift of 0.1 standard deviations reads 0.1
    assert wasserstein(a, a + 0.1 * np.std(a)) == pytest.approx(0.1, rel=1e-9)


def test_wasserstein_of_constant_columns_is_defined() -> None:
    assert wasserstein([1.0, 1.0], [1.0, 1.0, 1.0]) == 0.0
    # both constant: the gap in the column's unit
    assert wasserstein([1.0, 1.0], [3.0, 3.0]) == pytest.approx(2.0)
    # a constant reference is scaled by the current side's std (here 1)
    assert wasserstein([0.0, 0.0], [-1.0, 1.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one value"):
        wasserstein([np.nan], [1.0])


@settings(deadline=None)
@given(samples, samples, st.floats(0.01, 100), st.floats(-1e3, 1e3))
def test_wasserstein_is_scale_and_shift_invariant(
    a: list[float], b: list[float], scale: float, shift: float
) -> None:
    x, y = np.array(a), np.array(b)
    base = wasserstein(x, y)
    assert base >= 0
    assert wasserstein(x * scale + shift, y * scale + shift) == pytest.approx(
        base, rel=1e-6, abs=1e-9
    )
    assert wasserstein(x, x) == 0.0


def test_jensen_shannon_matches_scipy_base_2() -> None:
    p, q = [10, 0, 30, 5], [1, 8, 30, 0]
    want = scipy.spatial.distance.jensenshannon(p, q, base=2)
    assert jensen_shannon(p, q) == pytest.approx(want, rel=1e-9)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


@settings(deadline=None)
@given(st.data())
def test_jensen_shannon_is_a_bounded_symmetric_distance(data: st.DataObject) -> None:
    a = data.draw(counts)
    b = data.draw(
        st.lists(st.integers(0, 10_000), min_size=len(a), max_size=len(a)).filter(
            lambda xs: sum(xs) > 0
        )
    )
    d = jensen_shannon(a, b)
    assert 0.0 <= d <= 1.0
    assert d == pytest.approx(jensen_shannon(b, a), abs=1e-12)
    assert jensen_shannon(a, a) == pytest.approx(0.0, abs=1e-7)
    # invariant to scaling either side's counts
    assert jensen_shannon([x * 7 for x in a], b) == pytest.approx(d, abs=1e-7)


def test_jensen_shannon_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        jensen_shannon([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="negative"):
        jensen_shannon([1, -1], [1, 1])
    with pytest.raises(ValueError, match="at least one observation"):
        jensen_shannon([0, 0], [1, 1])


def test_js_categorical_counts_unseen_categories_as_their_own_bins() -> None:
    assert js_categorical({"a": 5}, {"b": 5}) == pytest.approx(1.0)
    assert js_categorical({"a": 5, "b": 5}, {"b": 1, "a": 1}) == pytest.approx(0.0, abs=1e-9)


def test_chi_square_is_the_contingency_test_without_correction() -> None:
    ref, cur = {"a": 30, "b": 10}, {"a": 12, "b": 14, "c": 3}
    want = scipy.stats.chi2_contingency([[30, 10, 0], [12, 14, 3]], correction=False)
    got = chi_square(ref, cur)
    assert got.statistic == pytest.approx(want.statistic)
    assert got.pvalue == pytest.approx(want.pvalue)
    assert got.dof == 2
    # 2 x 2 (where SciPy would apply Yates by default): no correction
    plain = scipy.stats.chi2_contingency([[30, 10], [12, 14]], correction=False)
    assert chi_square({"a": 30, "b": 10}, {"a": 12, "b": 14}).pvalue == pytest.approx(plain.pvalue)


def test_chi_square_edge_cases() -> None:
    one = chi_square({"a": 10}, {"a": 3})
    assert (one.statistic, one.pvalue, one.dof) == (0.0, 1.0, 0)
    with pytest.raises(ValueError, match="at least one observation"):
        chi_square({"a": 1}, {})


def test_ks_false_alarm_rate_at_alpha_005_is_nominal() -> None:
    rng = np.random.default_rng(2026)
    trials = 200
    small = sum(
        scipy.stats.ks_2samp(rng.normal(size=300), rng.normal(size=250)).pvalue < 0.05
        for _ in range(trials)
    )
    large = sum(
        ks_sorted(np.sort(rng.normal(size=12_000)), np.sort(rng.normal(size=11_000))).pvalue < 0.05
        for _ in range(trials)
    )
    # binomial(200, 0.05): mean 10, 2% .. 9% is [4, 18]
    assert 4 <= small <= 18, small
    assert 4 <= large <= 18, large


def test_chi_square_false_alarm_rate_at_alpha_005_is_nominal() -> None:
    """Both samples are random: a goodness-of-fit test against the reference's
    proportions would alarm far more often at equal sizes."""
    rng = np.random.default_rng(13)
    cats = np.array(list("abcdef"))
    probs = [0.4, 0.2, 0.15, 0.1, 0.1, 0.05]
    alarms = 0
    for _ in range(200):
        ref = dict(zip(*np.unique(rng.choice(cats, 400, p=probs), return_counts=True), strict=True))
        cur = dict(zip(*np.unique(rng.choice(cats, 400, p=probs), return_counts=True), strict=True))
        alarms += chi_square(ref, cur).pvalue < 0.05
    assert 4 <= alarms <= 18, alarms
