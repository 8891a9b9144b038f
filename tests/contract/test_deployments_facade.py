"""``milepost.deployments`` and the Client's endpoint methods: the public deployment calls."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import AlreadyExists, Conflict, InvalidInput
from milepost.serving import CanaryPolicy
from tests.contract.conftest import FEATURES


@pytest.fixture
def churn(runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> str:
    for key in ("good", "weak", "good"):
        with milepost.start_run(experiment="serving"):
            milepost.log_model(
                churn_models[key], "churn", input_example=churn_frame[FEATURES].head(3)
            )
    Client().promote("churn", 1, "Production")
    return "churn"


def _roles(spec: Any) -> dict[str, str]:
    return {v.name: v.role for v in spec.variants}


def test_create_get_list_and_the_runtime_agree(churn: str, runtime: Runtime) -> None:
    deployments = milepost.deployments
    assert deployments.list_endpoints() == []
    spec = deployments.create("ep", churn, version=1)
    assert _roles(spec) == {"churn-v1": "primary"}
    assert deployments.get("ep") == runtime.serving.get("ep")[0]
    assert deployments.list_endpoints() == ["ep"] == Client().list_endpoints()
    with pytest.raises(AlreadyExists):
        deployments.create("ep", churn, version=1)
    tracking = deployments.create("prod", churn)  # tracks Production by default
    assert tracking.track is not None and tracking.primary.version == 1
    assert deployments.status("prod")["registry"]["agrees"] is True


def test_canary_update_advance_and_rollback(churn: str, runtime: Runtime) -> None:
    deployments = milepost.deployments
    deployments.create("ep", churn, version=1)
    spec = deployments.update("ep", 3, policy=CanaryPolicy(steps=[10, 50, 100]))
    assert spec.variant("churn-v3").weight == 10  # type: ignore[union-attr]
    spec = deployments.advance("ep", reason="looks fine")
    assert spec.variant("churn-v3").weight == 50  # type: ignore[union-attr]
    spec = deployments.rollback("ep", reason="second thoughts")
    assert _roles(spec) == {"churn-v1": "primary"}
    kinds = [e.kind for e in runtime.serving.store.events("ep")]
    assert kinds[:3] == ["rollback", "canary.advance", "canary.start"]
    with pytest.raises(Conflict, match="Nothing to promote"):
        deployments.advance("ep")


def test_advance_switches_a_blue_green_preview_and_starts_a_canary_from_a_shadow(
    churn: str,
) -> None:
    client = Client()
    client.create_endpoint("ep", churn, version=1)
    client.update_endpoint("ep", 3, strategy="blue_green")
    spec = client.advance_endpoint("ep")
    assert _roles(spec) == {"churn-v1": "standby", "churn-v3": "primary"}
    client.rollback_endpoint("ep")
    client.update_endpoint("ep", 2, strategy="shadow", share=0.5)
    spec = client.advance_endpoint("ep")
    assert spec.rollout is not None and spec.rollout.kind == "canary"
    assert spec.variant("churn-v2").role == "canary"  # type: ignore[union-attr]


def test_update_refuses_unknown_strategies_and_misplaced_options(churn: str) -> None:
    deployments = milepost.deployments
    deployments.create("ep", churn, version=1)
    with pytest.raises(InvalidInput, match="Did you mean 'blue_green'"):
        deployments.update("ep", 3, strategy="blue-green")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="share goes with strategy='shadow'"):
        deployments.update("ep", 3, strategy="canary", share=0.5)
    with pytest.raises(InvalidInput, match="canary policy goes with"):
        deployments.update("ep", 3, strategy="rolling", policy=CanaryPolicy())
    assert _roles(deployments.get("ep")) == {"churn-v1": "primary"}
