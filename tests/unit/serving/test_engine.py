"""The serving engine tells a model's failures from the client's (no servers needed).

Input that fails the signature is the client's fault (4xx, logged ``invalid``); a model
that cannot predict on input that passed it is the variant's fault (5xx ``model_error``,
logged ``error``, counted by canary analysis). A null the model cannot take is refused
with the column named, whichever runtime (ONNX or native) serves the version.
"""

from __future__ import annotations

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
from milepost import Client, Runtime
from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC
from milepost.errors import InvalidInput, MilepostError, http_status
from milepost.models.signature import infer_signature
from milepost.serving.engine import EndpointEngine
from milepost.serving.logger import PredictionLogger

FEATURES = NUMERIC + CATEGORICAL


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(home=tmp_path / "home", user="tester")
    yield runtime
    milepost.reset()


def _pipeline(model: Any, *, unknown: str = "ignore") -> Pipeline:
    return Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown=unknown), CATEGORICAL),
                    ]
                ),
            ),
            ("model", model),
        ]
    )


def _log(model: Any, example: pd.DataFrame, *, onnx: bool = False, **kw: Any) -> int:
    with milepost.start_run(experiment="engine"):
        mv = milepost.log_model(model, "churn", input_example=example, onnx=onnx, **kw)
    if onnx:
        assert mv.has_onnx, mv.onnx
    return mv.version


class Endpoint:
    """An engine over a real endpoint with its prediction log, as a replica runs it."""

    def __init__(self, rt: Runtime, version: int) -> None:
        self.rt = rt
        rt.serving.create("ep", "churn", version=version)
        self.logger = PredictionLogger(
            "ep", rt.settings.home / "predictions", rt.serving.store, interval=3600
        )
        self.engine = EndpointEngine(
            "ep",
            store=rt.serving.store,
            models=rt.models,
            features=rt.features,
            logger=self.logger,
        )

    def predict(self, rows: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        reply = self.engine.predict(orjson.dumps({"rows": rows}), **kw)
        assert reply.status == 200
        out: dict[str, Any] = orjson.loads(reply.body)
        return out

    def logged(self) -> pd.DataFrame:
        self.engine.close()  # waits for shadows and flushes the log
        paths = self.rt.serving.store.segments("ep")
        return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def _rows(frame: pd.DataFrame, **where: str) -> list[dict[str, Any]]:
    part = frame
    for column, value in where.items():
        part = part[part[column] == value]
    rows: list[dict[str, Any]] = part[FEATURES].head(5).to_dict("records")
    return rows


@pytest.mark.parametrize("onnx", [False, True], ids=["native", "onnx"])
def test_a_model_failing_on_valid_input_is_the_variants_error(
    rt: Runtime, churn_frame: pd.DataFrame, onnx: bool
) -> None:
    """A model that raises (here a ValueError) on schema-valid rows is answered 500
    ``model_error``, logged as an error and counted by canary analysis."""
    north = churn_frame[churn_frame.region == "north"].iloc[:1500]
    broken = _pipeline(LogisticRegression(max_iter=500), unknown="error")
    broken.fit(north[FEATURES], north[LABEL])
    version = _log(broken, north[FEATURES].head(5), onnx=onnx)
    ep = Endpoint(rt, version)
    assert ep.predict(_rows(churn_frame, region="north"))["predictions"]
    with pytest.raises(MilepostError) as caught:
        ep.predict(_rows(churn_frame, region="south"))
    error = caught.value
    assert error.code == "model_error" and http_status(error) == 500
    assert f"churn-v{version}" in error.message and f"models:/churn/{version}" in error.message
    assert "ValueError" in error.message and "unknown categories" in error.message
    with pytest.raises(InvalidInput, match="'age' is str"):  # the client's fault
        ep.predict([{**_rows(churn_frame)[0], "age": "forty"}])
    logged = ep.logged()
    assert sorted(logged.drop_duplicates("request_id")["status"]) == ["error", "invalid", "ok"]
    failed = logged[logged.status == "error"]
    assert failed["error"].str.contains("ValueError").all()
    stats = rt.serving.stats("ep", since_ms=0)[f"churn-v{version}"]
    assert (stats.requests, stats.errors) == (3, 1)


def test_shadows_log_model_failures_as_errors_and_bad_input_as_invalid(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:1500]
    numeric = Pipeline([("s", StandardScaler()), ("m", LogisticRegression(max_iter=500))])
    numeric.fit(train[NUMERIC], train[LABEL])
    primary = _log(numeric, train[NUMERIC].head(5))
    north = train[train.region == "north"]
    broken = _pipeline(LogisticRegression(max_iter=500), unknown="error")
    broken.fit(north[FEATURES], north[LABEL])
    shadow = _log(broken, north[FEATURES].head(5))
    ep = Endpoint(rt, primary)
    rt.serving.shadow("ep", shadow)
    ep.engine.state = ep.engine._build(*rt.serving.get("ep"))  # as the poller would
    ep.predict(_rows(churn_frame, region="north"))  # both answer
    ep.predict(_rows(churn_frame, region="south"))  # the shadow's model fails
    without_plan = [{k: v for k, v in r.items() if k != "plan"} for r in _rows(churn_frame)]
    ep.predict(without_plan)  # the primary needs no plan; the shadow's signature does
    logged = ep.logged()
    statuses = logged[logged.variant == f"churn-v{shadow}"].drop_duplicates("request_id")
    assert sorted(statuses["status"]) == ["error", "invalid", "ok"]
    stats = rt.serving.stats("ep", since_ms=0)[f"churn-v{shadow}"]
    assert (stats.requests, stats.errors) == (3, 1)


@pytest.mark.parametrize("onnx", [False, True], ids=["native", "onnx"])
def test_a_null_the_model_cannot_take_is_refused_naming_the_column(
    rt: Runtime, churn_frame: pd.DataFrame, onnx: bool
) -> None:
    """Even when the stored signature says the float column may be null (a signature
    given by hand, or a version logged before the model was probed for nulls)."""
    train = churn_frame.iloc[:1500]
    example = train[FEATURES].head(5)
    lr = _pipeline(LogisticRegression(max_iter=500)).fit(train[FEATURES], train[LABEL])
    version = _log(lr, example, onnx=onnx, signature=infer_signature(example))
    ep = Endpoint(rt, version)
    row = _rows(churn_frame)[0]
    with pytest.raises(InvalidInput, match="'monthly_spend'") as caught:
        ep.predict([row, {**row, "monthly_spend": None}])
    assert "Row 1" in caught.value.message and http_status(caught.value) == 400
    assert ep.logged()["status"].tolist() == ["invalid", "invalid"]


@pytest.mark.parametrize("onnx", [False, True], ids=["native", "onnx"])
def test_a_model_that_handles_nulls_answers_them_as_the_native_model_does(
    rt: Runtime, churn_frame: pd.DataFrame, onnx: bool
) -> None:
    train = churn_frame.iloc[:1500]
    hgb = _pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0))
    hgb.fit(train[FEATURES], train[LABEL])
    ep = Endpoint(rt, _log(hgb, train[FEATURES].head(5), onnx=onnx))
    rows = _rows(churn_frame)
    rows[0]["monthly_spend"] = None
    rows[1]["plan"] = "unheard-of"
    rows[2]["discount_pct"] = 1e300
    out = ep.predict(rows)
    frame = pd.DataFrame(rows).astype({"monthly_spend": "float64"})
    np.testing.assert_allclose(out["probabilities"], hgb.predict_proba(frame), atol=1e-6)


def test_a_model_answering_nan_is_a_model_error_not_a_null_prediction(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:200]
    reg = LinearRegression().fit(train[NUMERIC], train["monthly_spend"])
    reg.coef_ = np.full_like(reg.coef_, np.nan)
    ep = Endpoint(rt, _log(reg, train[NUMERIC].head(5)))
    with pytest.raises(MilepostError) as caught:
        ep.predict(train[NUMERIC].head(2).to_dict("records"))
    assert caught.value.code == "model_error" and "NaN" in caught.value.message
    assert ep.logged()["status"].tolist() == ["error", "error"]


def test_the_stored_signature_says_which_columns_the_model_takes_null_in(
    rt: Runtime, churn_frame: pd.DataFrame
) -> None:
    train = churn_frame.iloc[:1500]
    example = train[FEATURES].head(5)
    lr = _pipeline(LogisticRegression(max_iter=500)).fit(train[FEATURES], train[LABEL])
    hgb = _pipeline(HistGradientBoostingClassifier(max_iter=20)).fit(train[FEATURES], train[LABEL])
    refused = Client().get_model_version(f"models:/churn/{_log(lr, example)}").signature
    taken = Client().get_model_version(f"models:/churn/{_log(hgb, example)}").signature
    assert refused is not None and taken is not None
    assert not any(c.nullable for c in refused.inputs)
    assert {c.name for c in taken.inputs if c.nullable} == {"monthly_spend", "discount_pct"}
    model = milepost.load_model("models:/churn/1")
    with pytest.raises(InvalidInput, match="'monthly_spend' has a null"):
        model.predict(example.assign(monthly_spend=[None, 1.0, 2.0, 3.0, 4.0]))
