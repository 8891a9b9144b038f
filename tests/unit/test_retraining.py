"""The retraining template's steps, called as plain functions on generated demo data.

A tmp home per test, the demo's feature definitions, a real registry, gates, endpoint
and evaluation: the happy path with and without automatic deployment, a worse model
refused at its gate, bad data stopped at validation, and a first model with no baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost.demo.data import LABEL, generate_customers
from milepost.errors import InvalidInput, ValidationFailed
from milepost.features import FeatureStore
from milepost.retraining import Decision, run_steps
from milepost.retraining.steps import load_callable, load_suite

MODEL = "churn"
FEATURES = (
    "customer_profile:age,customer_profile:tenure_months,customer_profile:plan,"
    "customer_activity:support_tickets,customer_activity:sessions_last_30d,"
    "customer_activity:late_payments,customer_activity:discount_pct,"
    "customer_activity:monthly_spend"
)
REPO = "milepost.demo.features"
METRIC_GATE = {
    "kind": "metric_vs_baseline",
    "name": "better than Production",
    "dataset": f"{MODEL}.test",  # unpinned: the newest held-out set
    "target": LABEL,
    "primary": "roc_auc",
    "min_delta": 0.005,
    "threshold": 0.6,
}
ARGS: dict[str, Any] = {"model": MODEL, "labels": "customers", "target": LABEL}


def weak_train(X: pd.DataFrame, y: pd.Series) -> Any:
    """Knows nothing: predicts the base rate (ROC AUC 0.5)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    prep = ColumnTransformer([("num", "passthrough", ["age"])])
    return Pipeline([("prep", prep), ("model", DummyClassifier(strategy="prior"))]).fit(X, y)


def linear_train(X: pd.DataFrame, y: pd.Series) -> Any:
    """A logistic regression on the numbers: some skill (ROC AUC ~0.7), less than trees."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    numeric = [c for c in X.columns if c != "plan"]
    prep = ColumnTransformer([("num", StandardScaler(), numeric)])
    return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=300))]).fit(X, y)


WEAK = f"{__name__}:weak_train"
LINEAR = f"{__name__}:linear_train"


@pytest.fixture
def home(tmp_path: Path) -> milepost.Runtime:
    """A home with the customers dataset and the demo's features applied."""
    return _home(tmp_path, None)


def _home(tmp_path: Path, metadata_uri: str | None) -> milepost.Runtime:
    rt = milepost.configure(
        home=tmp_path / "home",
        metadata_uri=metadata_uri,
        user="tester",
        metric_flush_interval=0.05,
    )
    milepost.data.register("customers", generate_customers(1200, seed=3))
    FeatureStore(REPO).apply()
    return rt


def _policy(**deploy: Any) -> None:
    policy: dict[str, Any] = {
        "staging": [{"kind": "data_validation"}],
        "production": [METRIC_GATE],
    }
    if deploy:
        policy["deploy"] = deploy
    milepost.Client().set_promotion_policy(MODEL, policy)


def _by_step(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.step: d for d in decisions}


def _first_model(train: str) -> list[Decision]:
    """The first version: no model registered, no policy yet; set one, then go."""
    milepost.Client()  # the runtime exists
    decisions = run_steps(**ARGS, features=FEATURES, feature_repo=REPO, train=train)
    return decisions


def test_first_model_has_no_baseline_and_enters_production(home: milepost.Runtime) -> None:
    decisions = _by_step(_first_model(LINEAR))
    assert decisions["validate_data"].action == "validated"
    assert decisions["evaluate_model"].action == "no baseline"
    assert "no Production version yet" in decisions["evaluate_model"].reasons[0]
    # no policy: every legal transition goes through; nothing tracks Production
    assert decisions["promote_to_staging"].action == "in Staging"
    assert decisions["deploy_model"].action == "in production"
    client = milepost.Client()
    version = client.get_model_version(MODEL, 1)
    assert client.get_model(MODEL).production_version == 1
    # the version pins exact feature versions, and its run used both parts of the split
    assert len(version.feature_refs) == 8
    assert all(r.count(":") == 2 for r in version.feature_refs)
    roles = {d["role"]: d["ref"] for d in version.datasets}
    assert roles == {"train": f"{MODEL}.train@1", "eval": f"{MODEL}.test@1"}
    # held-out rows are the newest: the split is by time
    train = milepost.data.get(f"{MODEL}.train@1").to_pandas()
    test = milepost.data.get(f"{MODEL}.test@1").to_pandas()
    assert train["event_timestamp"].max() < test["event_timestamp"].min()
    assert len(test) == pytest.approx(0.25 * 1200, abs=2)


def test_better_model_is_staged_and_enters_production(tmp_path: Path, metadata_uri: str) -> None:
    _home(tmp_path, metadata_uri)  # on each metadata backend
    _first_model(LINEAR)
    _policy()  # not automatic (the default)
    before = milepost.Client().get_model(MODEL).production_version
    decisions = _by_step(run_steps(**ARGS, feature_repo=REPO))  # features: Production's refs
    comparison = decisions["evaluate_model"]
    assert comparison.action == "candidate better"
    gain = comparison.details["improvement"]
    assert gain > 0.005
    assert f"{gain:+.4f}" in comparison.reasons[0]
    assert decisions["promote_to_staging"].action == "in Staging"
    deploy = decisions["deploy_model"]
    client = milepost.Client()
    # no approval gate and no endpoint: every gate passed, so Production moved
    assert deploy.action == "in production"
    assert client.get_model(MODEL).production_version == 2 != before
    request = client.get_promotion_request(deploy.details["request_id"])
    assert [g.status for g in request.gates] == ["passed"]


def test_pending_approval_when_policy_needs_a_person(home: milepost.Runtime) -> None:
    _first_model(LINEAR)
    client = milepost.Client()
    client.set_promotion_policy(
        MODEL,
        {"production": [METRIC_GATE, {"kind": "approval", "role": "approver"}]},
    )
    deploy = _by_step(run_steps(**ARGS, feature_repo=REPO))["deploy_model"]
    assert deploy.action == "pending approval"
    request = client.get_promotion_request(deploy.details["request_id"])
    assert request.status == "pending_approval"
    assert client.get_model(MODEL).production_version == 1
    assert client.get_model_version(MODEL, 2).stage == "Staging"


def test_automatic_deployment_starts_a_canary(home: milepost.Runtime) -> None:
    _first_model(LINEAR)
    client = milepost.Client()
    FeatureStore(REPO).materialize_incremental()  # the endpoint serves online features
    client.create_endpoint("churn-live", MODEL)
    _policy(automatic=True, endpoint="churn-live", steps=[25, 50, 100], min_seconds=2)
    deploy = _by_step(run_steps(**ARGS, feature_repo=REPO))["deploy_model"]
    assert deploy.action == "canary started"
    spec = client.get_endpoint("churn-live")
    assert spec.rollout is not None and spec.rollout.status == "progressing"
    assert spec.rollout.request_id == deploy.details["request_id"]
    assert [v.version for v in spec.variants if v.role == "canary"] == [2]
    assert spec.rollout.canary is not None and spec.rollout.canary.steps == [25, 50, 100]
    # the registry moves only when the canary ends
    assert client.get_model(MODEL).production_version == 1
    assert "better than Production passed" in deploy.reasons[1]


def test_automatic_deployment_waits_when_production_needs_a_person(
    home: milepost.Runtime,
) -> None:
    _first_model(LINEAR)
    client = milepost.Client()
    FeatureStore(REPO).materialize_incremental()
    client.create_endpoint("churn-live", MODEL)
    client.set_promotion_policy(
        MODEL,
        {
            "production": [METRIC_GATE, {"kind": "approval", "role": "approver"}],
            "deploy": {"automatic": True, "endpoint": "elsewhere"},
        },
    )
    # the pipeline's endpoint parameter wins over the policy's
    deploy = _by_step(run_steps(**ARGS, feature_repo=REPO, endpoint="churn-live"))["deploy_model"]
    assert deploy.action == "pending approval"
    assert deploy.details["endpoint"] == "churn-live"
    request = client.get_promotion_request(deploy.details["request_id"])
    assert request.status == "pending_approval" and request.version == 2
    assert client.get_endpoint("churn-live").rollout is None  # no traffic before approval
    assert f"milepost promotions approve {request.request_id[:12]}" in deploy.reasons[0]


def test_worse_model_is_refused_at_the_gate(home: milepost.Runtime) -> None:
    _first_model(LINEAR)
    client = milepost.Client()
    FeatureStore(REPO).materialize_incremental()  # the endpoint serves online features
    client.create_endpoint("churn-live", MODEL)
    client.set_promotion_policy(
        MODEL,
        {
            "staging": [METRIC_GATE],
            "deploy": {"automatic": True, "endpoint": "churn-live"},
        },
    )
    decisions = _by_step(run_steps(**ARGS, feature_repo=REPO, train=WEAK))
    assert decisions["evaluate_model"].action == "production better"
    staging = decisions["promote_to_staging"]
    assert staging.action.startswith("not promoted: better than Production: roc_auc")
    assert "< min_delta" in staging.reasons[0]
    assert decisions["deploy_model"].action == "not deployed"
    assert client.get_model_version(MODEL, 2).stage == "None"
    assert client.get_endpoint("churn-live").rollout is None
    refused = client.get_promotion_request(staging.details["request_id"])
    assert refused.status == "refused"


def test_bad_data_stops_at_validation(home: milepost.Runtime) -> None:
    frame = generate_customers(1200, seed=3)
    frame[LABEL] = frame[LABEL].astype("Int64")
    frame.loc[frame.index[:40], LABEL] = None  # labels lost upstream
    milepost.data.register("customers", frame)
    with pytest.raises(
        ValidationFailed, match=r"customers@2 failed 1 of 3 checks of suite 'retraining-defaults'"
    ) as caught:
        run_steps(**ARGS, features=FEATURES, feature_repo=REPO)
    assert [c.name for c in caught.value.result.failing] == [f"{LABEL} not null"]
    # the failed result is stored with the version it refused
    stored = milepost.get_runtime().data.validations("customers@2")
    assert [r.success for r in stored] == [False]
    assert milepost.Client().list_models() == []  # nothing trained, nothing registered


def test_bad_arguments_are_clear(home: milepost.Runtime) -> None:
    with pytest.raises(InvalidInput, match="no Production version"):
        run_steps(**ARGS, feature_repo=REPO)  # no features and nothing to copy them from
    with pytest.raises(InvalidInput, match="holdout must be a share"):
        run_steps(**ARGS, features=FEATURES, feature_repo=REPO, holdout=1.5)
    with pytest.raises(InvalidInput, match="has no column 'churn'"):
        run_steps(model=MODEL, labels="customers", target="churn")
    with pytest.raises(InvalidInput, match="Cannot import module 'no_such_module_xyz'"):
        load_callable("no_such_module_xyz:fit", "Train function")
    with pytest.raises(InvalidInput, match=r"reference is 'package\.module:attr'"):
        load_callable("no_colon", "Train function")
    with pytest.raises(InvalidInput, match="has no attribute 'NOPE'"):
        load_suite(f"{__name__}:NOPE", LABEL)
    with pytest.raises(InvalidInput, match="Did you mean 'weak_train'"):
        load_callable(f"{__name__}:weak_trian", "Train function")
    with pytest.raises(InvalidInput, match="names no expectation suite"):
        load_suite(f"{__name__}:MODEL", LABEL)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_suite("missing.yml", LABEL)
