"""The domain classifier: drift no single column shows, and its verdict on bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from milepost.errors import InvalidInput
from milepost.monitoring import domain_classifier_drift, ks_test


def _pairs(rho: float, n: int, seed: int) -> pd.DataFrame:
    """x and y standard normal with correlation ``rho``, z independent noise, c a category."""
    rng = np.random.default_rng(seed)
    xy = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], n)
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "z": rng.normal(size=n),
            "c": rng.choice(["a", "b", "c"], n),
        }
    )


def test_a_flipped_correlation_is_found_though_no_column_drifts() -> None:
    reference, current = _pairs(0.8, 1000, seed=1), _pairs(-0.8, 1000, seed=2)
    for col in ("x", "y", "z"):  # every marginal is the same: KS sees nothing
        assert ks_test(reference[col], current[col]).pvalue > 0.01
    result = domain_classifier_drift(reference, current, categorical=["c"])
    assert result.drifted and result.status == "drift"
    assert result.auc is not None and result.auc > 0.75
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.ci is not None and result.ci[0] <= result.auc <= result.ci[1]
    assert set(result.top_features[:2]) == {"x", "y"}
    assert result.importance["x"] > 10 * max(result.importance["z"], 0.001)
    assert (result.rows_reference, result.rows_current, result.subsampled) == (1000, 1000, False)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["top_features"][:2] == result.top_features[:2]


def test_same_distribution_is_not_drift() -> None:
    result = domain_classifier_drift(_pairs(0.8, 1000, seed=3), _pairs(0.8, 1000, seed=4))
    assert not result.drifted and result.status == "no_drift"
    assert result.auc is not None and result.auc < 0.55
    assert "does not separate" in result.reason


def test_a_shifted_category_is_found_and_named() -> None:
    reference = _pairs(0.0, 800, seed=5)
    current = _pairs(0.0, 800, seed=6)
    rng = np.random.default_rng(7)
    current["c"] = rng.choice(["a", "b", "c", "d"], 800, p=[0.1, 0.1, 0.3, 0.5])
    result = domain_classifier_drift(reference, current)  # text columns are categorical
    assert result.drifted and result.top_features[0] == "c"


def test_large_inputs_are_subsampled_per_side() -> None:
    result = domain_classifier_drift(
        _pairs(0.5, 3000, seed=8), _pairs(0.5, 600, seed=9), max_rows=500, folds=3
    )
    assert (result.rows_reference, result.rows_current, result.subsampled) == (500, 500, True)
    assert result.auc is not None and not result.drifted


def test_too_few_rows_give_a_status_not_a_guess() -> None:
    result = domain_classifier_drift(_pairs(0.0, 500, seed=10), _pairs(0.0, 5, seed=11))
    assert result.status == "insufficient_data" and result.auc is None and not result.drifted
    assert "at least 20" in result.reason


def test_mismatched_and_null_columns_are_skipped_and_reported() -> None:
    reference = _pairs(0.0, 300, seed=12).assign(only_ref=1.0, empty=np.nan)
    current = _pairs(0.0, 300, seed=13).assign(only_cur="x", empty=np.nan)
    for frame in (reference, current):
        frame.loc[::3, "x"] = np.nan  # nulls are handled, not refused
    # time tells any two windows apart: a date-time column is left out
    reference["at"] = pd.date_range("2026-01-01", periods=300, freq="min", tz="UTC")
    current["at"] = pd.date_range("2026-02-01", periods=300, freq="min", tz="UTC")
    result = domain_classifier_drift(reference, current, folds=3)
    assert result.skipped == ["only_cur", "only_ref", "empty", "at"]
    assert set(result.importance) == {"x", "y", "z", "c"}
    assert not result.drifted


def test_a_column_with_many_categories_keeps_the_frequent_ones_apart() -> None:
    rng = np.random.default_rng(14)
    names = np.array([f"u{i}" for i in range(300)])  # beyond the classifier's 255
    reference = pd.DataFrame({"user": rng.choice(names[:150], 3000), "v": rng.normal(size=3000)})
    current = pd.DataFrame({"user": rng.choice(names[150:], 3000), "v": rng.normal(size=3000)})
    result = domain_classifier_drift(reference, current, folds=3)
    assert result.drifted and result.top_features[0] == "user"


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="no \\(non-null\\) column in common"):
        domain_classifier_drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}))
    with pytest.raises(InvalidInput, match="not on both sides"):
        domain_classifier_drift(_pairs(0, 50, 1), _pairs(0, 50, 2), columns=["x", "nope"])
    with pytest.raises(InvalidInput, match="folds >= 2"):
        domain_classifier_drift(_pairs(0, 50, 1), _pairs(0, 50, 2), folds=1)
