"""The retraining template as a pipeline: loaded by reference, run through the pipeline
service (recorded steps, stored outputs, lineage), failing at validation on bad data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import milepost
from milepost.demo.data import LABEL, generate_customers
from milepost.errors import InvalidInput
from milepost.features import FeatureStore
from milepost.pipelines import load_pipeline
from milepost.retraining import Comparison, Deployment
from tests.unit.test_retraining import FEATURES, LINEAR, REPO

PARAMS = {"model": "churn", "labels": "customers", "target": LABEL, "feature_repo": REPO}
STEPS = [
    "validate_data",
    "build_training_set",
    "train_model",
    "evaluate_model",
    "promote_to_staging",
    "deploy_staging",
    "deploy_model",
]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread for the gradient-boosted trees the template trains: the
    same model, but more threads than free cores made the fit about 10x slower on a
    busy 2-core machine (as ``milepost.monitoring.multivariate`` found)."""
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime before the limit
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture
def rt(tmp_path: Path, metadata_uri: str) -> milepost.Runtime:
    """A home on each metadata backend with the customers and the demo's features."""
    runtime = milepost.configure(
        home=tmp_path / "home",
        metadata_uri=metadata_uri,
        user="tester",
        metric_flush_interval=0.05,
    )
    milepost.data.register("customers", generate_customers(1200, seed=3))
    FeatureStore(REPO).apply()
    return runtime


def test_the_template_loads_by_reference_with_plain_parameters() -> None:
    retrain = load_pipeline("milepost.retraining:retrain")
    assert retrain.name == "retrain" and retrain.ref == "milepost.retraining:retrain"
    assert list(retrain.parameters)[:3] == ["model", "labels", "target"]
    parsed = retrain.parse_params({**PARAMS, "holdout": "0.3"})
    assert parsed["holdout"] == 0.3 and parsed["train"] == "milepost.retraining:default_train"
    with pytest.raises(InvalidInput, match="model"):
        retrain.parse_params({"labels": "customers", "target": LABEL})
    dag = retrain.build(retrain.parse_params(PARAMS))
    assert [s.step for s in dag.steps] == STEPS
    assert all(s.options.get("cache") is False for s in dag.steps)  # side effects: never reused


def test_a_run_records_every_step_and_its_decision(rt: milepost.Runtime) -> None:
    first = rt.pipelines.run(
        "milepost.retraining:retrain", {**PARAMS, "features": FEATURES, "train": LINEAR}
    )
    assert first.status == "succeeded", first.error
    assert [s.step for s in first.steps] == STEPS
    assert {s.status for s in first.steps} == {"succeeded"}
    assert first.outputs("evaluate_model").winner == "no baseline"
    assert milepost.Client().get_model("churn").production_version == 1

    second = rt.pipelines.run("milepost.retraining:retrain", PARAMS)  # Production's refs
    assert second.status == "succeeded", second.error
    comparison = second.outputs("evaluate_model")
    assert isinstance(comparison, Comparison) and comparison.winner == "candidate"
    deployment = second.outputs("deploy_model")
    assert isinstance(deployment, Deployment) and deployment.action == "in production"
    assert milepost.Client().get_model("churn").production_version == 2
    # each output's one-line summary (what `milepost pipelines show` prints) is its decision
    summaries = {s.step: s.outputs[0].summary for s in second.steps}
    assert summaries["evaluate_model"] == repr(comparison)
    assert re.fullmatch(
        r"Comparison\(roc_auc v2 0\.\d{4} vs v1 0\.\d{4}: candidate\)", repr(comparison)
    )
    assert summaries["deploy_model"] == "Deployment(v2: in production)"
    assert summaries["promote_to_staging"] == "Staging(v2: in Staging)"
    assert summaries["validate_data"] == "DataCheck(customers@1: 3 passed, 0 failed of 3 checks)"
    assert summaries["build_training_set"].startswith("TrainingSet(churn.train@1 900 rows")
    assert summaries["train_model"].startswith("Candidate(churn v2, roc_auc 0.")
    # the tracking runs the steps started are linked to them (lineage)
    train_step = second.step("train_model")
    links = {(link.kind, link.ref) for link in train_step.links}
    assert ("run", comparison.candidate.run_id) in links
    # ...and so are the records its decisions name: which run made churn v2 is one call
    assert ("model_version", "churn/2") in links
    made_by = rt.pipelines.producers("model_version", "churn/2")
    assert [(r, s) for r, s, _ in made_by] == [(second.run_id, "train_model")]
    training = second.outputs("build_training_set")
    built = {(link.kind, link.ref) for link in second.step("build_training_set").links}
    assert {("dataset_version", training.train), ("dataset_version", training.holdout)} <= built
    read = second.step("validate_data").links
    assert [(link.kind, link.role) for link in read] == [("dataset_version", "input")]


def test_bad_data_fails_the_run_at_validation(rt: milepost.Runtime) -> None:
    frame = generate_customers(1200, seed=3)
    frame[LABEL] = frame[LABEL].astype("Int64")
    frame.loc[frame.index[:40], LABEL] = None
    milepost.data.register("customers", frame)
    run = rt.pipelines.run("milepost.retraining:retrain", {**PARAMS, "features": FEATURES})
    assert run.status == "failed" and run.failed_step == "validate_data"
    assert "ValidationFailed" in (run.error or "") and "not null" in (run.error or "")
    assert [s.status for s in run.steps][1:] == ["skipped"] * 6
    assert milepost.Client().list_models() == []


def test_new_data_triggers_retraining_through_the_scheduler(rt: milepost.Runtime) -> None:
    rt.pipelines.run(
        "milepost.retraining:retrain", {**PARAMS, "features": FEATURES, "train": LINEAR}
    )
    rt.triggers.add(
        "retrain-on-data",
        "milepost.retraining:retrain",
        params=PARAMS,
        on_data="customers",
        min_rows=500,
    )
    scheduler = rt.scheduler(launch="inline")
    assert scheduler.tick().firings == []  # nothing new yet
    old = milepost.data.get("customers").to_pandas()
    newer = generate_customers(600, seed=9, first_id=100_001)
    newer["event_timestamp"] = (
        old["event_timestamp"].max()
        + (newer["event_timestamp"] - newer["event_timestamp"].min()) / 10
    )  # the newest rows: after every earlier one, within the views' TTL
    milepost.data.register("customers", pd.concat([old, newer], ignore_index=True))
    tick = scheduler.tick()
    assert [f.trigger for f in tick.firings] == ["retrain-on-data"]
    assert "600 new rows in dataset customers" in tick.firings[0].reason
    run = rt.pipelines.get_run(tick.firings[0].run_id)
    assert run.status == "succeeded" and run.trigger == tick.firings[0].firing_id
    assert run.outputs("validate_data").labels == "customers@2"
    assert run.outputs("train_model").version == 2
    assert scheduler.tick().firings == []  # the same rows never fire twice
