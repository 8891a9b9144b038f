"""Deployment strategies and the canary controller's decisions (no servers needed)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import Conflict, InvalidInput, NotFound
from milepost.serving import CanaryPolicy
from milepost.serving.logger import PredictionLogger
from tests._wait import clock_ms_after
from tests.contract.conftest import FEATURES


@pytest.fixture
def endpoint(runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> str:
    for key in ("good", "weak", "good"):
        with milepost.start_run(experiment="serving"):
            milepost.log_model(
                churn_models[key], "churn", input_example=churn_frame[FEATURES].head(3)
            )
    Client().promote("churn", 1, "Production")
    # pinned to explicit versions: the strategies' routing, with no registry involved
    # (endpoints that track Production are tested in test_tracking_endpoints.py)
    runtime.serving.create("churn-ep", "churn", version=1)
    return "churn-ep"


def _log(
    runtime: Runtime,
    endpoint: str,
    variant: str,
    n: int,
    *,
    latency: float = 1.0,
    errors: int = 0,
    prediction: int = 0,
) -> None:
    logger = PredictionLogger(
        endpoint, runtime.settings.home / "predictions", runtime.serving.store, interval=3600
    )
    now = datetime.now(UTC)
    for i in range(n):
        logger.append(
            {
                "request_id": f"{variant}-{i}-{time.time_ns()}",
                "row": 0,
                "ts": now,
                "endpoint": endpoint,
                "variant": variant,
                "model": "churn",
                "version": 1,
                "role": "canary",
                "key": str(i),
                "features": "{}",
                "prediction": str(prediction),
                "latency_ms": latency,
                "status": "error" if i < errors else "ok",
                "error": None,
            }
        )
    logger.close()


def test_create_serves_the_version_and_checks_the_model(endpoint: str, runtime: Runtime) -> None:
    spec, revision = runtime.serving.get(endpoint)
    assert [(v.name, v.role) for v in spec.variants] == [("churn-v1", "primary")] and revision == 1
    assert spec.track is None and spec.kind == "pinned"
    with pytest.raises(NotFound, match="no version 9"):
        runtime.serving.create("other", "churn", version=9)
    with pytest.raises(InvalidInput, match="Endpoint name"):
        runtime.serving.create("bad name!", "churn")
    assert Client().list_audit_events(action="endpoint.create")[0].object_id == endpoint


def test_blue_green_preview_switch_rollback_finalize(endpoint: str, runtime: Runtime) -> None:
    svc = runtime.serving
    spec = svc.blue_green(endpoint, 3)
    assert {v.name: v.role for v in spec.variants} == {"churn-v1": "primary", "churn-v3": "standby"}
    with pytest.raises(Conflict, match="blue_green rollout of churn-v3 is preview"):
        svc.canary(endpoint, 2)
    spec = svc.switch(endpoint)
    assert {v.name: v.role for v in spec.variants} == {"churn-v1": "standby", "churn-v3": "primary"}
    spec = svc.rollback(endpoint, reason="latency")
    assert {v.name: v.role for v in spec.variants} == {"churn-v1": "primary"}
    assert spec.rollout is not None and spec.rollout.status == "rolled_back"
    svc.blue_green(endpoint, 3)
    svc.switch(endpoint)
    spec = svc.finalize(endpoint)
    assert [v.name for v in spec.variants] == ["churn-v3"]
    with pytest.raises(Conflict, match="Nothing to roll back"):
        svc.rollback(endpoint)
    kinds = [e.kind for e in svc.store.events(endpoint)]
    assert kinds[:3] == ["finalize", "blue_green.switch", "blue_green.start"]


def test_canary_holds_until_it_has_enough_traffic(endpoint: str, runtime: Runtime) -> None:
    svc = runtime.serving
    svc.canary(endpoint, 3, policy=CanaryPolicy(steps=[10, 100], min_seconds=0, min_requests=50))
    decision = svc.tick(endpoint)
    assert decision.action == "hold" and "0/50 requests" in decision.reason
    _log(runtime, endpoint, "churn-v3", 20)
    assert svc.tick(endpoint).action == "hold"
    _log(runtime, endpoint, "churn-v3", 40)
    _log(runtime, endpoint, "churn-v1", 200)
    decision = svc.tick(endpoint)
    assert decision.action == "advance", decision
    spec, _ = svc.get(endpoint)
    assert spec.variant("churn-v3").weight == 100  # type: ignore[union-attr]
    _log(runtime, endpoint, "churn-v3", 60)
    _log(runtime, endpoint, "churn-v1", 10)
    assert svc.tick(endpoint).action == "promote"
    spec, _ = svc.get(endpoint)
    assert spec.primary.name == "churn-v3" and spec.variant("churn-v1").role == "standby"  # type: ignore[union-attr]
    assert svc.rollback(endpoint, reason="second thoughts").primary.name == "churn-v1"


def test_canary_rolls_back_on_errors_and_on_latency(endpoint: str, runtime: Runtime) -> None:
    svc = runtime.serving
    svc.canary(endpoint, 3, policy=CanaryPolicy(min_seconds=0, min_requests=30))
    _log(runtime, endpoint, "churn-v1", 100)
    _log(runtime, endpoint, "churn-v3", 40, errors=10)
    decision = svc.tick(endpoint)
    assert decision.action == "rollback" and "error rate 25.00%" in decision.reason
    spec, _ = svc.get(endpoint)
    assert [v.name for v in spec.variants] == ["churn-v1"]
    assert svc.store.events(endpoint)[0].reason.startswith("automatic: canary error rate")
    policy = CanaryPolicy(min_seconds=0, min_requests=30, max_p99_ratio=2)
    svc.canary(endpoint, 2, policy=policy)
    # three times slower but only 2 ms: jitter, not a regression (min_p99_increase_ms 5)
    _log(runtime, endpoint, "churn-v1", 100, latency=1.0)
    _log(runtime, endpoint, "churn-v2", 40, latency=3.0)
    assert svc.tick(endpoint).action == "advance"
    svc.rollback(endpoint)
    svc.canary(endpoint, 2, policy=policy)
    _log(runtime, endpoint, "churn-v1", 100, latency=1.0)
    _log(runtime, endpoint, "churn-v2", 40, latency=9.0)
    decision = svc.tick(endpoint)
    assert decision.action == "rollback" and "p99" in decision.reason


def test_the_canary_is_judged_from_its_first_answer(endpoint: str, runtime: Runtime) -> None:
    """While replicas load the canary, primary requests slow down; that window must not
    make a slow canary look acceptable."""
    svc = runtime.serving
    svc.canary(endpoint, 2, policy=CanaryPolicy(min_seconds=0, min_requests=30))
    _log(runtime, endpoint, "churn-v1", 100, latency=40.0)  # replicas busy loading v2
    clock_ms_after(int(time.time() * 1000))  # the canary's first answer comes later
    _log(runtime, endpoint, "churn-v2", 40, latency=20.0)
    _log(runtime, endpoint, "churn-v1", 100, latency=1.0)
    decision = svc.tick(endpoint)
    assert decision.action == "rollback", decision.reason
    assert "p99 20.0 ms > 1.5 x primary 1.0 ms" in decision.reason


def test_prediction_drift_can_stop_a_canary(endpoint: str, runtime: Runtime) -> None:
    svc = runtime.serving
    svc.canary(
        endpoint, 3, policy=CanaryPolicy(min_seconds=0, min_requests=30, max_prediction_psi=0.2)
    )
    _log(runtime, endpoint, "churn-v1", 100, prediction=0)
    _log(runtime, endpoint, "churn-v3", 50, prediction=1)
    decision = svc.tick(endpoint)
    assert decision.action == "rollback" and "PSI" in decision.reason


def test_shadow_reports_agreement_and_promotes_to_canary(endpoint: str, runtime: Runtime) -> None:
    svc = runtime.serving
    svc.shadow(endpoint, 2, share=0.5)
    logger = PredictionLogger(
        endpoint, runtime.settings.home / "predictions", svc.store, interval=3600
    )
    now = datetime.now(UTC)
    for i in range(10):
        for variant, role, pred in (
            ("churn-v1", "primary", "0"),
            ("churn-v2", "shadow", "0" if i < 7 else "1"),
        ):
            logger.append(
                {
                    "request_id": f"r{i}",
                    "row": 0,
                    "ts": now,
                    "endpoint": endpoint,
                    "variant": variant,
                    "model": "churn",
                    "version": 1,
                    "role": role,
                    "key": str(i),
                    "features": "{}",
                    "prediction": pred,
                    "latency_ms": 1.0,
                    "status": "ok",
                    "error": None,
                }
            )
    logger.close()
    stats = svc.status(endpoint)["stats"]
    assert stats["churn-v2"]["agreement"] == pytest.approx(0.7)
    with pytest.raises(InvalidInput, match="must rise"):
        svc.promote(endpoint, policy=CanaryPolicy(steps=[50, 10]))
    spec = svc.promote(endpoint, policy=CanaryPolicy(steps=[10, 100], min_seconds=5))
    canary = spec.variant("churn-v2")
    assert canary is not None and (canary.role, canary.weight) == ("canary", 10)
    assert spec.rollout is not None and spec.rollout.kind == "canary"
    assert spec.rollout.canary is not None and spec.rollout.canary.min_seconds == 5


def test_models_pinning_unmaterialized_features_are_refused(
    runtime: Runtime, tmp_path: Any
) -> None:
    from sklearn.linear_model import LinearRegression

    from milepost.features import Entity, FeatureStore, FeatureView, Field, FileSource

    now = datetime.now(UTC)
    pd.DataFrame(
        {"cid": [1, 2, 3], "ts": [now - timedelta(hours=1)] * 3, "x": [1.0, 2.0, 3.0]}
    ).to_parquet(tmp_path / "x.parquet")
    fs = FeatureStore(
        [
            view := FeatureView(
                name="xs",
                entity=Entity("c", ["cid"]),
                source=FileSource(str(tmp_path / "x.parquet")),
                timestamp_field="ts",
                ttl=timedelta(days=1),
                schema=[Field("x")],
            )
        ]
    )
    fs.apply()
    labels = pd.DataFrame({"cid": [1, 2, 3], "event_timestamp": [now] * 3, "y": [1.0, 2.0, 3.0]})
    with milepost.start_run():
        train = fs.get_historical_features(labels, ["xs:x"])
        milepost.log_model(
            LinearRegression().fit(train[["x"]], train["y"]),
            "xmodel",
            input_example=train[["x"]].head(2),
        )
    with pytest.raises(InvalidInput, match="never materialized"):
        runtime.serving.create("xs-ep", "xmodel", version=1)
    fs.materialize(None, now)
    runtime.serving.create("xs-ep", "xmodel", version=1)
    assert view.name == "xs"
