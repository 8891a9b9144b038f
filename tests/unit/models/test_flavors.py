"""Secure packaging: skops with an allow-list, pickles only when trusted, ONNX twins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from milepost.errors import InvalidInput, PermissionDenied
from milepost.models import _onnx, flavors
from tests.conftest import optional_import


class Doubler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A custom transformer: code skops must not trust by default."""

    def fit(self, X: object, y: object = None) -> Doubler:
        return self

    def transform(self, X: object) -> object:
        return np.asarray(X) * 2


class Constant:
    def predict(self, X: object) -> object:
        return np.ones(len(X))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    return X, (X[:, 0] + rng.normal(scale=0.3, size=200) > 0).astype(int)


@pytest.mark.parametrize(
    "make",
    [
        LogisticRegression,
        lambda: optional_import("lightgbm", extra="dev").LGBMClassifier(n_estimators=5, verbose=-1),
        lambda: optional_import("xgboost", extra="dev").XGBClassifier(n_estimators=5),
        lambda: __import__("sklearn.ensemble", fromlist=["x"]).HistGradientBoostingClassifier(
            max_iter=5
        ),
    ],
)
def test_sklearn_compatible_models_round_trip_with_skops(
    make: object, xy: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = xy
    model = make().fit(X, y)  # type: ignore[operator]
    assert flavors.detect_flavor(model) == "sklearn"
    data = flavors.save(model, "sklearn")
    loaded = flavors.load("sklearn", data)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_custom_types_must_be_named(xy: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = xy
    pipe = Pipeline([("double", Doubler()), ("model", LogisticRegression())]).fit(X, y)
    name = f"{__name__}.Doubler"
    with pytest.raises(InvalidInput, match=rf"contains type '{name}'.*trusted_types"):
        flavors.save(pipe, "sklearn")
    data = flavors.save(pipe, "sklearn", trusted_types=[name])
    with pytest.raises(PermissionDenied, match=f"type '{name}'"):
        flavors.load("sklearn", data)
    assert flavors.load("sklearn", data, trusted_types=[name]).predict(X).shape == (200,)


def test_pickles_need_trust() -> None:
    data = flavors.save(Constant(), "python")
    with pytest.raises(PermissionDenied, match="runs arbitrary code"):
        flavors.load("python", data)
    assert flavors.load("python", data, trusted=True).predict([1, 2]).tolist() == [1.0, 1.0]


def test_objects_without_predict_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no predict method"):
        flavors.detect_flavor(object())


def test_onnx_twin_is_kept_only_when_it_agrees(xy: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = xy
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, y)
    outcome = _onnx.convert(model, frame.head(5))
    assert outcome.data is not None and outcome.max_abs_diff is not None
    predictor = flavors.load("onnx", outcome.data)
    np.testing.assert_allclose(
        predictor.predict_proba(frame), model.predict_proba(frame), atol=1e-5
    )
    strict = _onnx.convert(model, frame.head(5), tolerance=-1.0)  # nothing can agree this well
    assert strict.data is None and "not kept" in strict.reason
    weird = _onnx.convert(
        Pipeline([("d", Doubler()), ("m", LogisticRegression())]).fit(frame, y), frame.head(5)
    )
    assert weird.data is None and "not kept" in weird.reason
