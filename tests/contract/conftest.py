"""Models trained once per session for the registry and promotion suites."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC, generate_customers
from milepost.demo.training import preprocess as _preprocess

FEATURES = NUMERIC + CATEGORICAL


@pytest.fixture(scope="session")
def churn_frame() -> pd.DataFrame:
    return generate_customers(3000, seed=21)


@pytest.fixture(scope="session")
def churn_models(churn_frame: pd.DataFrame) -> dict[str, Any]:
    """A know-nothing model (ROC AUC 0.5) and a real one, on the same training rows."""
    train = churn_frame.iloc[:2000]
    weak = Pipeline([("prep", _preprocess(True)), ("model", DummyClassifier(strategy="prior"))])
    good = Pipeline(
        [("prep", _preprocess(True)), ("model", LogisticRegression(C=1.0, max_iter=500))]
    )
    return {
        "weak": weak.fit(train[FEATURES], train[LABEL]),
        "good": good.fit(train[FEATURES], train[LABEL]),
    }
