"""The retraining pipeline's steps, as plain typed functions over Milepost's public API.

Each step takes plain values (the pipeline's parameters) and the record of the step
before, does one thing, and returns a record carrying its :class:`Decision`. Called
outside a pipeline they are ordinary functions (that is how the tests drive them); the
pipeline in :mod:`milepost.retraining` wires them.

A step refuses bad input with a clear error (the run fails at that step, resumable);
an outcome that is a decision, not a fault (the gates refuse the candidate, Production
waits for a person), is recorded and the run succeeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import milepost
from milepost._refs import resolve_ref
from milepost.errors import InvalidInput, NotFound
from milepost.pipelines import step
from milepost.retraining.records import (
    Candidate,
    DataCheck,
    Decision,
    TrainingSet,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from milepost.data import Suite
    from milepost.features import FeatureStore
    from milepost.promotion import MetricVsBaseline, PromotionPolicy

__all__ = [
    "DEFAULT_TRAIN",
    "TIMESTAMP",
    "build_training_set",
    "default_suite",
    "default_train",
    "load_callable",
    "load_suite",
    "train_model",
    "validate_data",
]

#: The train function used when none is named.
DEFAULT_TRAIN = "milepost.retraining:default_train"
#: The labels' event-time column (what point-in-time retrieval joins on).
TIMESTAMP = "event_timestamp"


# -- helpers ------------------------------------------------------------------------------


def load_callable(ref: str, what: str) -> Callable[..., Any]:
    """``package.module:function`` imported, or InvalidInput saying why not."""
    value = resolve_ref(
        ref,
        what,
        example="milepost.retraining:default_train",
        hint="Is it installed, or on PYTHONPATH?",
    )
    if not callable(value):
        raise InvalidInput(f"{what} {ref!r} is a {type(value).__name__}, not a function.")
    return value  # type: ignore[no-any-return]


def default_suite(target: str) -> Suite:
    """The checks used when no suite is named: the target and the event time are never
    null, and there are rows enough to split (Milepost stores no suites by name, so a
    dataset has no checks of its own to fall back on)."""
    from milepost.data import NotNull, RowCount, Suite

    return Suite(
        name="retraining-defaults",
        description="What any labels dataset must satisfy before retraining.",
        checks=[NotNull(column=target), NotNull(column=TIMESTAMP), RowCount(min=20)],
    )


def load_suite(suite: str, target: str) -> Suite:
    """The suite named by ``suite``: a YAML file (``.yml``/``.yaml``), or
    ``module:attr`` naming a Suite or a function of no arguments returning one; empty
    means :func:`default_suite`."""
    from milepost.data import Suite

    if not suite:
        return default_suite(target)
    if suite.endswith((".yml", ".yaml")):
        path = Path(suite)
        if not path.is_file():
            raise InvalidInput(f"Suite file {suite!r} does not exist.")
        return Suite.from_yaml(path)
    value = resolve_ref(
        suite,
        "suite",
        example="my_project.checks:labels_suite (or a suite YAML file)",
        hint="Is it installed, or on PYTHONPATH?",
    )
    if value is not None and not isinstance(value, Suite) and callable(value):
        value = value()
    if not isinstance(value, Suite):
        raise InvalidInput(
            f"Suite {suite!r} names no expectation suite.",
            hint="Pass a suite YAML file, or module:attr of a Suite (or of a function "
            "returning one), or leave it empty for the default checks.",
        )
    return value


def default_train(X: pd.DataFrame, y: pd.Series) -> Any:
    """Gradient-boosted trees (scikit-learn): numbers as they are, other columns one-hot
    encoded; a classifier for class labels, a regressor otherwise. Seeded."""
    from pandas.api.types import is_numeric_dtype
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from milepost.evaluation.metrics import infer_task

    numeric = [c for c in X.columns if is_numeric_dtype(X[c])]
    other = [c for c in X.columns if c not in numeric]
    prep = ColumnTransformer(
        [("num", "passthrough", numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), other)]
    )
    settings: dict[str, Any] = {"max_iter": 150, "early_stopping": True, "random_state": 0}
    estimator: Any = (
        HistGradientBoostingClassifier(learning_rate=0.08, max_leaf_nodes=15, **settings)
        if infer_task(y.to_numpy()) == "classification"
        else HistGradientBoostingRegressor(**settings)
    )
    return Pipeline([("prep", prep), ("model", estimator)]).fit(X, y)


def _policy(model: str) -> PromotionPolicy:
    from milepost.promotion import PromotionPolicy

    try:
        return milepost.get_runtime().promotion.get_policy(model)
    except NotFound:
        return PromotionPolicy()


def _metric_gate(policy: PromotionPolicy) -> MetricVsBaseline | None:
    from milepost.promotion import MetricVsBaseline

    for gate in (*policy.production, *policy.staging):
        if isinstance(gate, MetricVsBaseline):
            return gate
    return None


def _production(model: str) -> int | None:
    try:
        return milepost.Client().get_model(model).production_version
    except NotFound:
        return None


def _experiment(model: str) -> str:
    return f"{model}-retraining"


# -- the steps ----------------------------------------------------------------------------


@step(cache=False)
def validate_data(labels: str, target: str, suite: str = "") -> DataCheck:
    """Validate the newest version of the labels dataset; refuse it on any failed check.

    Raises:
        ValidationFailed: a check failed (the message carries the summary; the result
            is stored and linked to the dataset version).
        InvalidInput: the dataset lacks the target or the event time column.
        NotFound: no dataset of that name.
    """
    version = milepost.data.get(labels)
    columns = [c.name for c in version.schema]
    missing = [c for c in (target, TIMESTAMP) if c not in columns]
    if missing:
        raise InvalidInput(
            f"The labels dataset {version.ref} has no column {missing[0]!r}.",
            hint=f"It needs the entity keys, {TIMESTAMP!r} and the target; it has "
            + ", ".join(columns[:20])
            + ".",
        )
    checks = load_suite(suite, target)
    result = milepost.data.validate(version, checks, strict=True)
    return DataCheck(
        labels=version.ref,
        rows=version.num_rows,
        suite=checks.name,
        result_id=result.result_id,
        summary=result.summary,
        decision=Decision(
            "validate_data",
            "validated",
            [
                f"{version.ref} ({version.num_rows:,} rows) passed suite {checks.name!r}: "
                f"{result.summary}"
            ],
            {"dataset": version.ref, "result_id": result.result_id, "suite": checks.name},
        ),
    )


def _feature_refs(model: str, features: str) -> tuple[list[str], str]:
    refs = [f.strip() for f in features.split(",") if f.strip()]
    if refs:
        return refs, "as given"
    production = _production(model)
    if production is None:
        raise InvalidInput(
            f"features is empty and {model!r} has no Production version whose feature refs "
            "the new model could reuse.",
            hint="Pass features=view:feature,view:feature,... for the first model.",
        )
    pinned = milepost.Client().get_model_version(model, production).feature_refs
    if not pinned:
        raise InvalidInput(
            f"features is empty and Production {model} v{production} pins no feature refs.",
            hint="Pass features=view:feature,... explicitly.",
        )
    return list(pinned), f"pinned by Production v{production}"


def _label_columns(store: FeatureStore, refs: list[str]) -> tuple[list[str], list[str]]:
    """The labels' columns the refs need: the entity join keys (of a feature view, or of
    an on-demand view's sources) and the on-demand views' request data."""
    keys: list[str] = []
    requested: list[str] = []
    for ref in refs:
        view = store.definitions.views.get(ref.split(":")[0])
        for source in (view, *getattr(view, "sources", ())):
            entity = getattr(source, "entity", None)
            keys += [k for k in getattr(entity, "join_keys", ()) if k not in keys]
        for field in getattr(view, "request_schema", ()):
            if field.name not in requested:
                requested.append(field.name)
    return keys, requested


def _when(moment: Any) -> str:
    """A time as ``2026-03-01 14:05:09 UTC`` (naive times are UTC)."""
    import pandas as pd

    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _split(frame: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Oldest rows to train, newest to hold out: every training row is older than every
    held-out row (rows sharing the cut-off time all go to the held-out part)."""
    ordered = frame.sort_values(TIMESTAMP, kind="stable")
    n_hold = max(1, math.ceil(len(ordered) * holdout))
    cutoff = ordered[TIMESTAMP].iloc[len(ordered) - n_hold]
    train = ordered[ordered[TIMESTAMP] < cutoff].reset_index(drop=True)
    test = ordered[ordered[TIMESTAMP] >= cutoff].reset_index(drop=True)
    return train, test, cutoff


def _holdout_name(model: str, gate: MetricVsBaseline | None) -> tuple[str, str | None]:
    """Where the held-out rows are registered: the dataset the policy's metric gate
    scores on when it names no version (its newest version is then this run's held-out
    set, so the gate and this pipeline compare on the same rows), else ``MODEL.test``.
    Also returns a note when the gate is pinned to another version."""
    if gate is not None:
        name, sep, _ = gate.dataset.partition("@")
        if not sep or gate.dataset.endswith("@latest"):
            return name, None
        return f"{model}.test", (
            f"the policy's gate {gate.label()!r} scores on {gate.dataset}, pinned; this "
            "run's held-out rows are compared here, the gate decides on its own dataset"
        )
    return f"{model}.test", None


@step(cache=False)
def build_training_set(
    data: DataCheck,
    model: str,
    target: str,
    features: str = "",
    feature_repo: str = "",
    holdout: float = 0.25,
    suite: str = "",
) -> TrainingSet:
    """Build the training set point-in-time from the feature store, split it by time and
    register both parts as dataset versions (validated with the same suite).

    Args:
        data: the validated labels (entity keys, event time, target).
        model: the registered model (names the datasets: ``MODEL.train`` and the
            held-out set, see :func:`_holdout_name`).
        target: the label column.
        features: comma-separated ``view:feature`` refs; empty = the Production
            version's pinned refs.
        feature_repo: the feature definitions (as ``FeatureStore(repo)`` takes); empty =
            the ``feature_repo`` setting.
        holdout: the newest share of rows held out (0 < holdout < 1).
        suite: the suite the parts are validated with (the data gates read this).

    Raises:
        InvalidInput: a bad holdout, no feature refs, or a split with an empty side.
    """
    from milepost.features import FeatureStore

    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise InvalidInput(
            f"holdout must be a share between 0 and 1 (exclusive), got {holdout!r}.",
            hint="For example holdout=0.25 holds out the newest quarter of the rows.",
        )
    refs, origin = _feature_refs(model, features)
    store = FeatureStore(feature_repo or None)
    keys, requested = _label_columns(store, refs)
    labels = milepost.data.get(data.labels).to_pandas()
    missing = [k for k in (*keys, *requested) if k not in labels.columns]
    if missing:
        what = "join key" if missing[0] in keys else "request column"
        hint = "Columns: " + ", ".join(map(str, labels.columns[:20])) + "."
        if what == "request column":
            hint += (
                " An on-demand view's request data is read from the labels at training "
                "time, as each request carries it when the model serves."
            )
        raise InvalidInput(
            f"The labels {data.labels} lack the {what} {missing[0]!r} the features need.",
            hint=hint,
        )
    entity_df = labels[list(dict.fromkeys([*keys, *requested, TIMESTAMP, target]))]
    policy = _policy(model)
    held_name, note = _holdout_name(model, _metric_gate(policy))
    checks = load_suite(suite, target)
    with milepost.start_run(
        experiment=_experiment(model),
        run_name=f"{model} training set",
        tags={"milepost.retraining": model},
    ) as run:
        full = store.get_historical_features(entity_df, refs)
        train_df, test_df, cutoff = _split(full, float(holdout))
        if train_df.empty or test_df.empty:
            raise InvalidInput(
                f"Holding out {holdout:g} of {len(full):,} rows by time leaves "
                f"{len(train_df):,} to train on and {len(test_df):,} to hold out.",
                hint="Use more rows with distinct event times, or another holdout share.",
            )
        train = milepost.data.register(
            f"{model}.train", train_df, description=f"point-in-time training set of {model}"
        )
        test = milepost.data.register(
            held_name, test_df, description=f"held-out set of {model} (newest rows)"
        )
        for dataset in (train, test):  # the promotion's data gates read these results
            milepost.data.validate(dataset, checks)
        milepost.log_input(train, role="train")
        milepost.log_input(test, role="eval")
        pinned = milepost.get_runtime().features.registry.refs_of_run(run.run_id)
    names = [r.split(":")[-1] for r in refs]
    columns = [c for c in dict.fromkeys(names) if c in full.columns]
    reasons = [
        f"{len(full):,} label rows of {data.labels} joined point-in-time with "
        f"{len(refs)} features ({origin})",
        f"split by time at {_when(cutoff)}: {train.ref} ({train.num_rows:,} rows) to train, "
        f"{test.ref} ({test.num_rows:,} newest rows) held out",
    ]
    if note:
        reasons.append(note)
    return TrainingSet(
        train=train.ref,
        holdout=test.ref,
        train_rows=train.num_rows,
        holdout_rows=test.num_rows,
        cutoff=_when(cutoff),
        feature_refs=pinned or refs,
        columns=columns,
        target=target,
        run_id=run.run_id,
        decision=Decision(
            "build_training_set",
            "built",
            reasons,
            {"train": train.ref, "holdout": test.ref, "feature_refs": pinned or refs},
        ),
    )


@step(cache=False)
def train_model(training: TrainingSet, model: str, train: str = DEFAULT_TRAIN) -> Candidate:
    """Train with ``train`` (``module:function``, ``(X, y) -> fitted estimator``) in a
    tracked run, score it on the held-out rows and register it as a new version of
    ``model``, pinning the training set's feature refs.

    Raises:
        InvalidInput: the train function cannot be loaded or returns no model.
    """
    from milepost.evaluation import classification_metrics, regression_metrics
    from milepost.evaluation.metrics import infer_task

    fit = load_callable(train, "Train function")
    frame = milepost.data.get(training.train).to_pandas()
    held = milepost.data.get(training.holdout).to_pandas()
    X, y = frame[training.columns], frame[training.target]
    rt = milepost.get_runtime()
    with milepost.start_run(
        experiment=_experiment(model),
        run_name=f"{model} retrained",
        tags={"milepost.retraining": model},
    ) as run:
        milepost.log_input(training.train, role="train")
        milepost.log_input(training.holdout, role="eval")
        milepost.log_params(
            {
                "train_function": train,
                "train": training.train,
                "holdout": training.holdout,
                "features": ", ".join(training.columns),
            }
        )
        fitted = fit(X, y)
        if not hasattr(fitted, "predict"):
            raise InvalidInput(
                f"Train function {train!r} returned a {type(fitted).__name__}, not a fitted "
                "model (nothing with predict).",
                hint="Return the fitted estimator: def train(X, y): return model.fit(X, y)",
            )
        truth = held[training.target].to_numpy()
        inputs = held[training.columns]
        if infer_task(truth) == "classification":
            proba = fitted.predict_proba(inputs) if hasattr(fitted, "predict_proba") else None
            classes = getattr(fitted, "classes_", None)
            raw = classification_metrics(truth, fitted.predict(inputs), proba, classes)
        else:
            raw = regression_metrics(truth, fitted.predict(inputs))
        metrics = {k: float(v) for k, v in raw.items() if v is not None and math.isfinite(v)}
        milepost.log_metrics(metrics)
        sklearn = type(fitted).__module__.startswith("sklearn.")
        version = rt.models.log_model(
            run.run_id,
            fitted,
            name=model,
            input_example=X.head(5),
            training_data=X,
            onnx=sklearn,  # kept only when it matches on the example: fast online
            feature_refs=training.feature_refs,
            description=f"retrained on {training.train} by {train}",
        )
    shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("roc_auc", "rmse") if k in metrics)
    return Candidate(
        model=model,
        version=version.version,
        run_id=run.run_id,
        metrics=metrics,
        training=training,
        decision=Decision(
            "train_model",
            "trained",
            [
                f"{train} fitted on {training.train} ({training.train_rows:,} rows) in run "
                f"{run.run_id[:12]}" + (f"; on the held-out rows {shown}" if shown else ""),
                f"registered {model} v{version.version}, pinning "
                f"{len(version.feature_refs)} feature refs",
            ],
            {"run_id": run.run_id, "version": version.version, "metrics": metrics},
        ),
    )
