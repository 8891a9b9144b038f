"""The training data's reference profile, stored with a model version on every metadata
backend: computed once by log_model(training_data=), read back for drift monitoring."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Runtime
from milepost.errors import InvalidInput, NotFound
from milepost.monitoring import drift, profile
from tests.contract.conftest import FEATURES


def _log(model: Any, **kw: Any) -> Any:
    with milepost.start_run(experiment="models"):
        return milepost.log_model(model, "churn", **kw)


def test_log_model_stores_the_training_profile(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:2000]
    mv = _log(
        churn_models["good"], input_example=train[FEATURES].head(5), training_data=train[FEATURES]
    )
    assert mv.has_profile and "profile.json" in mv.files
    stored = runtime.models.get_profile("churn", mv.version)
    assert stored == profile(train[FEATURES])
    assert stored is not None and stored.rows == 2000 and list(stored.columns) == FEATURES
    # monitoring compares serving data with the stored profile, not the training set
    later = churn_frame.iloc[2000:3000][FEATURES].copy()
    later["age"] = later["age"] + 15
    result = drift(stored, later)
    assert "age" in result.drifted_features and not result.exact


def test_no_training_data_means_no_profile_and_the_example_is_not_profiled(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    mv = _log(churn_models["good"], input_example=churn_frame[FEATURES].head(5))
    assert not mv.has_profile and "profile.json" not in mv.files
    assert runtime.models.get_profile("churn", mv.version) is None
    with pytest.raises(NotFound):
        runtime.models.get_profile("churn", 7)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([1, 2, 3], "training_data: .*DataFrame"),
        (pd.DataFrame({"age": []}), "no rows"),
    ],
)
def test_bad_training_data_is_refused_before_anything_is_registered(
    runtime: Runtime,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
    bad: Any,
    match: str,
) -> None:
    with pytest.raises(InvalidInput, match=match):
        _log(churn_models["good"], input_example=churn_frame[FEATURES].head(5), training_data=bad)
    with pytest.raises(NotFound):
        runtime.models.get_version("churn", 1)
