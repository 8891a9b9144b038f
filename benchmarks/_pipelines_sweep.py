"""The sweep that ``pipelines.py`` measures (importable as ``_pipelines_sweep``).

``sweep16``: a 16-trial hyperparameter sweep on the demo's churn data. ``prepare``
generates the customers with their churn label
(``milepost.demo.data.generate_customers``) and encodes them as a plain numeric frame
(categories as codes); ``trial`` fits a ``HistGradientBoostingClassifier`` per
combination of ``grid(learning_rate, max_leaf_nodes, l2_regularization,
min_samples_leaf)`` (a fan-out with ``trial.map``: 16 parallel steps, each a tracked run
that logs its parameters and its ROC AUC on the last ``HOLDOUT_DAYS`` days); ``best``
picks the highest AUC.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from milepost.pipelines import grid, pipeline, step

#: The sweep's grid: 2 x 2 x 2 x 2 = 16 trials.
GRID: dict[str, list[Any]] = {
    "learning_rate": [0.05, 0.1],
    "max_leaf_nodes": [15, 31],
    "l2_regularization": [0.0, 1.0],
    "min_samples_leaf": [20, 50],
}
#: Boosting iterations per trial (no early stopping, so every trial does the same work).
MAX_ITER = 200
#: The last days of the demo data held out for the AUC.
HOLDOUT_DAYS = 30


@step
def prepare(rows: int, seed: int) -> pd.DataFrame:
    """The demo's customers with their churn label, as numbers (categories as codes),
    plus a ``holdout`` flag for the last ``HOLDOUT_DAYS`` days (the AUC's rows)."""
    from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC, generate_customers

    customers = generate_customers(rows, seed=seed)
    frame = customers[NUMERIC].astype("float64")
    for col in CATEGORICAL:
        frame[col] = customers[col].astype("category").cat.codes.astype("int64")
    frame[LABEL] = customers[LABEL].astype("int64")
    cutoff = customers["event_timestamp"].max() - pd.Timedelta(days=HOLDOUT_DAYS)
    frame["holdout"] = (customers["event_timestamp"] > cutoff).to_numpy()
    return frame.reset_index(drop=True)


def fit(
    data: pd.DataFrame,
    learning_rate: float,
    max_leaf_nodes: int,
    l2_regularization: float,
    min_samples_leaf: int,
) -> float:
    """Fit one ``HistGradientBoostingClassifier`` on the days before the held-out ones;
    its ROC AUC on the held-out days. Plain scikit-learn: the trial step's work, also
    timed without Milepost (``pipelines.py``'s plain process-pool reference)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from milepost.demo.data import CATEGORICAL, LABEL

    features = [c for c in data.columns if c not in (LABEL, "holdout")]
    train, test = data[~data["holdout"]], data[data["holdout"]]
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        l2_regularization=l2_regularization,
        min_samples_leaf=min_samples_leaf,
        max_iter=MAX_ITER,
        early_stopping=False,
        categorical_features=[features.index(c) for c in CATEGORICAL],
        random_state=0,
    )
    model.fit(train[features], train[LABEL])
    return float(roc_auc_score(test[LABEL], model.predict_proba(test[features])[:, 1]))


def fit_args(args: tuple[pd.DataFrame, dict[str, Any]]) -> float:
    """:func:`fit` on ``(data, keyword arguments)`` (for ``ProcessPoolExecutor.map``)."""
    return fit(args[0], **args[1])


@step(track=True)
def trial(
    data: pd.DataFrame,
    learning_rate: float,
    max_leaf_nodes: int,
    l2_regularization: float,
    min_samples_leaf: int,
) -> float:
    """One trial: :func:`fit`, its AUC logged as the tracked run's metric ``auc``."""
    import milepost

    auc = fit(data, learning_rate, max_leaf_nodes, l2_regularization, min_samples_leaf)
    milepost.log_metric("auc", auc)
    return auc


@step
def best(aucs: list[float]) -> float:
    """The highest AUC of the sweep."""
    return max(aucs)


@pipeline(name="sweep16")
def sweep(rows: int = 100_000, seed: int = 7) -> None:
    """``prepare`` -> 16 parallel ``trial`` steps (the grid) -> ``best``."""
    data = prepare(rows, seed)
    aucs = trial.map(data=data, **grid(**GRID))
    best(aucs)
