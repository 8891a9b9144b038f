"""An ONNX twin answers exactly what its native model answers, on any input.

For each model family (the demo's pipelines, with and without an imputer, an encoder
that refuses unseen categories, bare estimators), the version is served once from its
ONNX twin and once natively, through the Python API and through the serving runtime,
on rows with nulls, extremes and unseen categories. Each row must get the same answer
from both, or the same refusal. Complete ordinary rows must be answered by the twin
alone (the native model is not even loaded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import milepost
from milepost import Runtime
from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC
from milepost.demo.training import preprocess
from milepost.errors import MilepostError
from milepost.serving.engine import VariantRuntime
from milepost.serving.spec import Variant

FEATURES = NUMERIC + CATEGORICAL
FLOATS = ["monthly_spend", "discount_pct"]  # the float columns; the other numbers are ints


def _imputed_lr() -> Pipeline:
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    prep = ColumnTransformer(
        [("num", numbers, NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=500))])


def _strict_lr() -> Pipeline:
    prep = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), CATEGORICAL)]
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=500))])


# family -> (a new model, its input columns, whether it learns from missing values)
FAMILIES: dict[str, tuple[Callable[[], Any], list[str], bool]] = {
    "logreg pipeline": (
        lambda: Pipeline([("prep", preprocess(True)), ("model", LogisticRegression(max_iter=500))]),
        FEATURES,
        False,
    ),
    "hgb pipeline": (
        lambda: Pipeline(
            [("prep", preprocess(False)), ("model", HistGradientBoostingClassifier(max_iter=30))]
        ),
        FEATURES,
        True,
    ),
    "forest pipeline": (
        lambda: Pipeline(
            [
                ("prep", preprocess(False)),
                ("model", RandomForestClassifier(n_estimators=20, random_state=0)),
            ]
        ),
        FEATURES,
        False,  # a forest that learned missing values has no twin (see _onnx)
    ),
    "imputer + logreg pipeline": (_imputed_lr, FEATURES, True),
    "encoder refusing unseen categories": (_strict_lr, FEATURES, False),
    "bare logreg": (lambda: LogisticRegression(max_iter=1000), NUMERIC, False),
    "bare hgb": (lambda: HistGradientBoostingClassifier(max_iter=30), NUMERIC, True),
    "bare forest": (
        lambda: RandomForestClassifier(n_estimators=20, random_state=0),
        NUMERIC,
        False,
    ),
    "bare hgb regressor": (lambda: HistGradientBoostingRegressor(max_iter=30), NUMERIC, True),
}


def _probe_rows(base: dict[str, Any], columns: list[str]) -> dict[str, dict[str, Any]]:
    """Rows with nulls, extremes and unseen categories, named for the failure report."""
    changes: dict[str, dict[str, Any]] = {"as is": {}}
    for c in FLOATS:
        for value in (None, 0.0, -1e9, 3e38, 3.5e38, 1e39, 1e308, -1e308):
            changes[f"{c}={value}"] = {c: value}
    changes["all floats null"] = dict.fromkeys(FLOATS)
    for value in (None, 0, -1, 2**62, -(2**62)):
        changes[f"age={value}"] = {"age": value}
    if "region" in columns:
        for value in ("mars", "", None):
            changes[f"region={value!r}"] = {"region": value}
        changes["plan unseen, spend null"] = {"plan": "platinum", "monthly_spend": None}
    return {name: {**base, **change} for name, change in changes.items()}


def _verdict(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except MilepostError as exc:
        return ("refused", exc.code)
    except Exception as exc:
        return ("raised", type(exc).__name__)


def _answer(served: tuple[list[Any], list[list[float]] | None]) -> Any:
    return served[1] if served[1] is not None else served[0]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(a[0], str):
        return a == b
    if isinstance(b, tuple) and isinstance(b[0], str):
        return False
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), atol=1e-5))


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(home=tmp_path / "home", user="tester")
    yield runtime
    milepost.reset()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_onnx_twin_answers_what_the_native_model_answers(
    rt: Runtime, churn_frame: pd.DataFrame, family: str
) -> None:
    make, columns, learns_missing = FAMILIES[family]
    train = churn_frame.iloc[:1500].copy()
    if learns_missing:
        train.loc[train.index[::9], "monthly_spend"] = np.nan
    model = make()
    target = train[LABEL].astype(float) if "regressor" in family else train[LABEL]
    model.fit(train[columns], target)
    example = churn_frame[columns].iloc[1500:1505]
    with milepost.start_run(experiment="parity"):
        mv = milepost.log_model(model, "m", input_example=example, onnx=True)
    assert mv.has_onnx, mv.onnx
    native = milepost.load_model(mv.uri)
    fast = milepost.load_model(mv.uri, prefer_onnx=True)
    assert fast.uses_onnx
    predict = "predict_proba" if hasattr(model, "predict_proba") else "predict"

    # ordinary complete rows: the twin answers alone, the native model is never loaded
    ordinary = churn_frame[columns].iloc[1600:1650]
    np.testing.assert_allclose(
        getattr(fast, predict)(ordinary), getattr(native, predict)(ordinary), atol=1e-5
    )
    served_fast = VariantRuntime(
        Variant(name="fast", model="m", version=1, role="primary"), fast, None
    )
    served_fast.predict(ordinary.to_dict("records"))
    assert fast._native_loader is not None, "the twin sent complete rows to the native model"

    served_native = VariantRuntime(
        Variant(name="native", model="m", version=1, role="primary"), rt.models.load(mv.uri), None
    )
    base = churn_frame[columns].iloc[[1700]].to_dict("records")[0]
    mismatches = {}
    for name, row in _probe_rows(base, columns).items():
        frame = pd.DataFrame([row]).astype({c: "float64" for c in FLOATS if c in columns})
        pairs = {
            "python api": (
                _verdict(lambda f=frame: getattr(native, predict)(f)),
                _verdict(lambda f=frame: getattr(fast, predict)(f)),
            ),
            "serving": (
                _verdict(lambda r=row: _answer(served_native.predict([r]))),
                _verdict(lambda r=row: _answer(served_fast.predict([r]))),
            ),
        }
        for where, (want, got) in pairs.items():
            if not _same(want, got):
                mismatches[f"{where}: {name}"] = (want, got)
        assert pairs["serving"][1][0] != "raised", (name, pairs)  # a MilepostError, always
    assert not mismatches, mismatches


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # as outside tests: skl2onnx warns
def test_a_forest_that_learned_missing_values_is_served_natively(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    """Its trees split on missing values with an infinite threshold, which skl2onnx
    converts by looping forever: log_model must return (without a twin) instead, and the
    version answers nulls natively."""
    train = churn_frame.iloc[:1500].copy()
    train.loc[train.index[::9], "monthly_spend"] = np.nan
    forest = Pipeline(
        [
            ("prep", preprocess(False)),
            ("model", RandomForestClassifier(n_estimators=10, random_state=0)),
        ]
    )
    forest.fit(train[FEATURES], train[LABEL])
    with milepost.start_run(experiment="parity"):
        mv = milepost.log_model(forest, "forest", input_example=train[FEATURES].head(5), onnx=True)
    assert not mv.has_onnx and mv.onnx is not None
    assert "splits on missing values" in mv.onnx["reason"]
    served = VariantRuntime(
        Variant(name="v", model="forest", version=1, role="primary"),
        rt.models.load(mv.uri, prefer_onnx=True),
        None,
    )
    row = {**train[FEATURES].iloc[[3]].to_dict("records")[0], "monthly_spend": None}
    _, proba = served.predict([row])
    frame = pd.DataFrame([row]).astype({"monthly_spend": "float64"})
    np.testing.assert_allclose(proba, forest.predict_proba(frame))
