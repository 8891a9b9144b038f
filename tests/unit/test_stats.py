"""Properties of the drift statistics (PSI, KS)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milepost.stats import ks_test, psi, psi_from_samples

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=20).filter(
    lambda xs: sum(xs) > 0
)


@given(counts)
def test_psi_of_a_distribution_with_itself_is_zero(c: list[int]) -> None:
    assert psi(c, c) == pytest.approx(0.0, abs=1e-12)


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
