"""The prediction log holds a classifier's class probabilities, with the classes they are of.

Each logged row of a classifier carries ``{"classes": [...], "p": [...]}`` equal to the
model's ``predict_proba`` (whichever runtime answered: the ONNX twin, or the native model
for a row the twin is not trusted on); a regressor's rows and failed rows carry none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import milepost
from milepost import Runtime
from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC
from milepost.serving.engine import EndpointEngine
from milepost.serving.logger import PredictionLogger

FEATURES = NUMERIC + CATEGORICAL


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(home=tmp_path / "home", user="tester")
    yield runtime
    milepost.reset()


def _pipeline(model: Any) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("prep", prep), ("model", model)])


def _serve(rt: Runtime, model: Any, example: pd.DataFrame, *, onnx: bool) -> EndpointEngine:
    with milepost.start_run(experiment="proba"):
        mv = milepost.log_model(model, "churn", input_example=example, onnx=onnx)
    assert mv.has_onnx == onnx, mv.onnx
    rt.serving.create("ep", "churn", version=mv.version)
    logger = PredictionLogger("ep", rt.settings.home / "predictions", rt.serving.store)
    return EndpointEngine(
        "ep", store=rt.serving.store, models=rt.models, features=rt.features, logger=logger
    )


def _logged(rt: Runtime, engine: EndpointEngine) -> pd.DataFrame:
    engine.close()  # flushes the log
    paths = rt.serving.store.segments("ep")
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


@pytest.mark.parametrize("onnx", [False, True], ids=["native", "onnx"])
@pytest.mark.parametrize("kind", ["logistic", "trees"])
def test_a_classifiers_log_rows_carry_its_probabilities_and_classes(
    rt: Runtime, churn_frame: pd.DataFrame, onnx: bool, kind: str
) -> None:
    train = churn_frame.iloc[:1500].copy()
    # text classes: the positive label (1) becomes the first class, "churn"
    train["outcome"] = np.where(train[LABEL] == 1, "churn", "stay")
    model = _pipeline(
        LogisticRegression(max_iter=500)
        if kind == "logistic"
        else HistGradientBoostingClassifier(max_iter=20, random_state=0)
    ).fit(train[FEATURES], train["outcome"])
    engine = _serve(rt, model, train[FEATURES].head(5), onnx=onnx)
    runtime = engine.state.variants["churn-v1"]
    if onnx:  # the classes come from the ONNX graph: the native model stays unloaded
        assert runtime.onnx is not None and runtime.onnx.classes == ["churn", "stay"]
    rows = [
        {str(k): v for k, v in r.items()}
        for r in churn_frame.iloc[2000:2006][FEATURES].to_dict("records")
    ]
    batches = [rows[:1], rows[1:4], rows[4:]]
    if kind == "trees":  # a null: the native model answers it even with a twin
        batches[2][0] = {**batches[2][0], "monthly_spend": None}
    answers = [orjson.loads(engine.predict(orjson.dumps({"rows": b})).body) for b in batches[:2]]
    if onnx:  # complete rows: the twin answered and the classes came from its graph
        assert runtime.loaded._native_loader is not None, "the native model was loaded"
    answers.append(orjson.loads(engine.predict(orjson.dumps({"rows": batches[2]})).body))
    log = _logged(rt, engine)
    assert len(log) == 6 and (log["status"] == "ok").all()
    sent = pd.DataFrame([r for b in batches for r in b]).astype({"monthly_spend": "float64"})
    expected = model.predict_proba(sent)
    at = {
        (a["request_id"], i): n
        for n, (a, i) in enumerate((a, i) for a in answers for i in range(len(a["predictions"])))
    }
    order = [at[(rid, int(row))] for rid, row in zip(log["request_id"], log["row"], strict=True)]
    logged = [json.loads(text) for text in log["probabilities"]]
    assert all(entry["classes"] == ["churn", "stay"] for entry in logged)
    np.testing.assert_allclose([e["p"] for e in logged], expected[order], atol=1e-5)
    # the client got the same numbers the log holds, and the class of the largest
    answered = [p for a in answers for p in a["probabilities"]]
    np.testing.assert_allclose([e["p"] for e in logged], np.array(answered)[order], atol=1e-12)
    best = [e["classes"][int(np.argmax(e["p"]))] for e in logged]
    assert [json.loads(t) for t in log["prediction"]] == best


def test_a_regressors_rows_and_failed_rows_carry_no_probabilities(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:300]
    reg = LinearRegression().fit(train[NUMERIC], train["monthly_spend"])
    engine = _serve(rt, reg, train[NUMERIC].head(5), onnx=False)
    assert engine.state.variants["churn-v1"].classes is None
    rows = train[NUMERIC].head(3).to_dict("records")
    assert engine.predict(orjson.dumps({"rows": rows})).status == 200
    with pytest.raises(Exception, match="missing column"):
        engine.predict(orjson.dumps({"rows": [{"tenure_months": 3}]}))
    log = _logged(rt, engine)
    assert log["status"].tolist() == ["ok", "ok", "ok", "invalid"]
    assert log["probabilities"].isna().all()
    assert log["prediction"].notna().sum() == 3
