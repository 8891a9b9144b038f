"""Explanations are exact and say what they explain, for every model family served.

For each family, bare and at the end of a pipeline: the right explainer (tree, linear,
or the model-agnostic one only when neither applies), ``output_space`` as the model
really computes (probability for forests, log-odds for boosters and logistic
regression, the prediction for regressors), ``base_value + sum(contributions) ==
output`` and ``output`` equal to the model's own answer mapped to that space. The
background is a seeded sample of the recorded training data, and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier

import milepost
from milepost import Runtime
from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC
from milepost.demo.training import preprocess
from milepost.errors import InvalidInput
from milepost.serving.engine import EndpointEngine

FEATURES = NUMERIC + CATEGORICAL


def _in_pipeline(model: Any, scale: bool = False) -> Callable[[], Any]:
    return lambda: Pipeline([("prep", preprocess(scale)), ("model", model)])


# family -> (a new model, bare (numeric inputs) or not, output space, method)
FAMILIES: dict[str, tuple[Callable[[], Any], bool, str, str]] = {
    "forest": (
        _in_pipeline(RandomForestClassifier(n_estimators=25, random_state=0)),
        False,
        "probability",
        "tree",
    ),
    "bare forest": (
        lambda: RandomForestClassifier(n_estimators=25, random_state=0),
        True,
        "probability",
        "tree",
    ),
    "extra trees": (
        _in_pipeline(ExtraTreesClassifier(n_estimators=25, random_state=0)),
        False,
        "probability",
        "tree",
    ),
    "bare decision tree": (
        lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
        True,
        "probability",
        "tree",
    ),
    "gradient boosting": (
        _in_pipeline(GradientBoostingClassifier(n_estimators=30, random_state=0)),
        False,
        "log-odds",
        "tree",
    ),
    "hist gradient boosting": (
        _in_pipeline(HistGradientBoostingClassifier(max_iter=40, random_state=0)),
        False,
        "log-odds",
        "tree",
    ),
    "bare hist gradient boosting": (
        lambda: HistGradientBoostingClassifier(max_iter=40, random_state=0),
        True,
        "log-odds",
        "tree",
    ),
    "lightgbm": (
        _in_pipeline(LGBMClassifier(n_estimators=30, verbose=-1, random_state=0)),
        False,
        "log-odds",
        "tree",
    ),
    "bare lightgbm": (
        lambda: LGBMClassifier(n_estimators=30, verbose=-1, random_state=0),
        True,
        "log-odds",
        "tree",
    ),
    "xgboost": (_in_pipeline(XGBClassifier(n_estimators=30)), False, "log-odds", "tree"),
    "bare xgboost": (lambda: XGBClassifier(n_estimators=30), True, "log-odds", "tree"),
    "logistic regression": (
        _in_pipeline(LogisticRegression(max_iter=500), scale=True),
        False,
        "log-odds",
        "linear",
    ),
    "bare logistic regression": (
        lambda: LogisticRegression(max_iter=2000),
        True,
        "log-odds",
        "linear",
    ),
    "forest regressor": (
        lambda: RandomForestRegressor(n_estimators=20, random_state=0),
        True,
        "prediction",
        "tree",
    ),
    "hist gradient boosting regressor": (
        _in_pipeline(HistGradientBoostingRegressor(max_iter=30)),
        False,
        "prediction",
        "tree",
    ),
    "ridge": (_in_pipeline(Ridge(), scale=True), False, "prediction", "linear"),
    "bare linear regression": (LinearRegression, True, "prediction", "linear"),
    "nearest neighbours": (
        _in_pipeline(KNeighborsClassifier(n_neighbors=15), scale=True),
        False,
        "probability",
        "permutation",
    ),
}


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(home=tmp_path / "home", user="tester")
    yield runtime
    milepost.reset()


class Served:
    """A logged version behind an endpoint's engine, as a replica serves it."""

    def __init__(self, rt: Runtime, version: int, endpoint: str) -> None:
        rt.serving.create(endpoint, "m", version=version)
        self.engine = EndpointEngine(
            endpoint, store=rt.serving.store, models=rt.models, features=rt.features
        )

    def _answer(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        reply = self.engine.predict(orjson.dumps({"rows": rows}), explain=True)
        out: dict[str, Any] = orjson.loads(reply.body)
        return out

    def explain(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        explained: list[dict[str, Any]] = self._answer(rows)["explanations"]
        return explained

    def predict(self, rows: list[dict[str, Any]]) -> tuple[list[Any], Any]:
        out = self._answer(rows)
        return out["predictions"], out.get("probabilities")


def _served(
    rt: Runtime, model: Any, train: pd.DataFrame, columns: list[str], *, dataset: bool = True
) -> Served:
    """Log the model (with its training dataset) and serve it as a replica does."""
    with milepost.start_run(experiment="explain"):
        if dataset:
            milepost.log_input(milepost.data.register("churn.train", train), role="train")
        mv = milepost.log_model(model, "m", input_example=train[columns].head(5))
    return Served(rt, mv.version, f"ep{mv.version}")


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p[:, 1] / p[:, 0])


def _expected(model: Any, frame: pd.DataFrame, space: str) -> np.ndarray:
    if space == "probability":
        return np.asarray(model.predict_proba(frame))[:, 1]
    if space == "log-odds":
        return _logit(np.asarray(model.predict_proba(frame)))
    return np.asarray(model.predict(frame), dtype=float)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_explanations_are_exact_and_in_the_stated_output_space(
    rt: Runtime, churn_frame: pd.DataFrame, family: str
) -> None:
    make, bare, space, method = FAMILIES[family]
    columns = NUMERIC if bare else FEATURES
    train = churn_frame.iloc[:2000]
    target = train[LABEL].astype(float) if space == "prediction" else train[LABEL]
    inputs = columns
    model = make().fit(train[inputs], target)
    served = _served(rt, model, train, inputs)
    rows = churn_frame[inputs].iloc[2000:2008]
    explained = served.explain(rows.to_dict("records"))
    expected = _expected(model, rows, space)
    for i, ex in enumerate(explained):
        assert ex["output_space"] == space and ex["method"].startswith(method)
        assert set(ex["contributions"]) == set(inputs)
        total = ex["base_value"] + sum(ex["contributions"].values())
        assert total == pytest.approx(ex["output"], rel=1e-6, abs=1e-6)
        assert ex["output"] == pytest.approx(expected[i], rel=1e-5, abs=1e-5)
        if space != "prediction":
            assert ex["explained_class"] == 1
        if method == "tree":
            assert ex["background"]["source"].startswith("training data")
        else:
            assert ex["background"] == {
                "source": "dataset",
                "ref": "churn.train@1",
                "rows": 50 if method == "permutation" else 100,  # bounded work per row
                "seed": 0,
            }
    _, proba = served.predict(rows.to_dict("records"))  # consistent with the answer
    if proba is not None:
        mapped = np.asarray(proba)[:, 1] if space == "probability" else _logit(np.asarray(proba))
        np.testing.assert_allclose([e["output"] for e in explained], mapped, atol=1e-5)


def test_the_model_agnostic_explainer_is_deterministic(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    """Seeded per row: a row's explanation does not depend on earlier requests or on the
    other rows of its request (17 features after one-hot encoding: past exact SHAP)."""
    make = FAMILIES["nearest neighbours"][0]
    train = churn_frame.iloc[:2000]
    served = _served(rt, make().fit(train[FEATURES], train[LABEL]), train, FEATURES)
    rows = churn_frame[FEATURES].iloc[2000:2004].to_dict("records")
    first = served.explain(rows)
    again = served.explain(rows[2:] + rows[:2])
    assert again[2:] + again[:2] == first


def test_multiclass_explanations_name_the_predicted_class(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:2000]
    for make, space in (
        (lambda: HistGradientBoostingClassifier(max_iter=20), "raw score (softmax input)"),
        (lambda: RandomForestClassifier(n_estimators=10, random_state=0), "probability"),
    ):
        model = make().fit(train[NUMERIC], train["plan"])
        served = _served(rt, model, train, NUMERIC)
        rows = churn_frame[NUMERIC].iloc[2000:2006]
        predicted = model.predict(rows)
        proba = model.predict_proba(rows)
        for i, ex in enumerate(served.explain(rows.to_dict("records"))):
            assert ex["output_space"] == space and ex["explained_class"] == predicted[i]
            total = ex["base_value"] + sum(ex["contributions"].values())
            assert total == pytest.approx(ex["output"], abs=1e-6)
            if space == "probability":
                assert ex["output"] == pytest.approx(proba[i].max())


def test_nulls_are_explained_by_trees_that_take_them(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:2000].copy()
    train.loc[train.index[::7], "monthly_spend"] = np.nan
    make = FAMILIES["hist gradient boosting"][0]
    model = make().fit(train[FEATURES], train[LABEL])
    served = _served(rt, model, train, FEATURES)
    rows = churn_frame[FEATURES].iloc[2000:2003].to_dict("records")
    rows[1]["monthly_spend"] = None
    explained = served.explain(rows)
    frame = pd.DataFrame(rows).astype({"monthly_spend": "float64"})
    for ex, want in zip(explained, _logit(model.predict_proba(frame)), strict=True):
        assert ex["base_value"] + sum(ex["contributions"].values()) == pytest.approx(ex["output"])
        assert ex["output"] == pytest.approx(want)


def test_without_training_data_the_input_example_is_the_background_and_says_so(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:2000]
    make = FAMILIES["logistic regression"][0]
    served = _served(rt, make().fit(train[FEATURES], train[LABEL]), train, FEATURES, dataset=False)
    (ex,) = served.explain(churn_frame[FEATURES].iloc[[2000]].to_dict("records"))
    assert ex["background"]["source"] == "input_example" and ex["background"]["rows"] == 5
    assert "no training dataset" in ex["background"]["reason"]


@pytest.mark.parametrize("family", ["logistic regression", "hist gradient boosting"])
def test_explain_with_a_null_is_an_answer_or_a_client_error_never_a_crash(
    rt: Runtime, churn_frame: pd.DataFrame, family: str
) -> None:
    from tests.unit.serving.test_engine import Endpoint

    train = churn_frame.iloc[:2000]
    model = FAMILIES[family][0]().fit(train[FEATURES], train[LABEL])
    with milepost.start_run(experiment="explain"):
        milepost.log_input(milepost.data.register("churn.train", train), role="train")
        milepost.log_model(model, "churn", input_example=train[FEATURES].head(5), onnx=True)
    ep = Endpoint(rt, 1)
    row = {**churn_frame[FEATURES].iloc[[2000]].to_dict("records")[0], "monthly_spend": None}
    if family == "logistic regression":  # the model takes no null there: the client's fault
        with pytest.raises(InvalidInput, match="'monthly_spend'"):
            ep.engine.predict(orjson.dumps({"rows": [row]}), explain=True)
    else:
        (ex,) = ep.predict([row], explain=True)["explanations"]
        assert ex["base_value"] + sum(ex["contributions"].values()) == pytest.approx(ex["output"])
    ep.engine.close()


def test_the_background_is_a_seeded_sample_of_the_training_data(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    """For a linear model the base value is the mean output over the background: here
    the mean over 100 training rows drawn with seed 0, not over the 5-row example."""
    train = churn_frame.iloc[:2000]
    model = FAMILIES["logistic regression"][0]().fit(train[FEATURES], train[LABEL])
    served = _served(rt, model, train, FEATURES)
    (ex,) = served.explain(churn_frame[FEATURES].iloc[[2000]].to_dict("records"))
    picked = np.sort(np.random.default_rng(0).choice(len(train), size=100, replace=False))
    sample = train[FEATURES].iloc[picked]
    assert ex["base_value"] == pytest.approx(model.decision_function(sample).mean())
    example = train[FEATURES].head(5)
    assert ex["base_value"] != pytest.approx(model.decision_function(example).mean())
