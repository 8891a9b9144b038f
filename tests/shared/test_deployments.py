"""Endpoints through ``milepost.Client``, embedded and remote: list, status with
per-variant traffic, a canary advanced to primary, rollback, refusals and roles."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from milepost.serving import CanaryPolicy
from tests.contract.conftest import FEATURES
from tests.shared._ops_setup import log_predictions, register_models
from tests.shared._registry import remote_runtime

MODEL = "ops-churn"


@pytest.fixture(scope="module")
def models(
    platform: dict[str, Any], churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> str:
    """``ops-churn`` versions 1 (good), 2 (weak) and 3 (good), registered once."""
    register_models(platform["rt"], MODEL, churn_models, churn_frame, ("good", "weak", "good"))
    return MODEL


@pytest.fixture
def endpoint(platform: dict[str, Any], models: str, unique: str) -> str:
    """A fresh endpoint pinned to version 1."""
    platform["rt"].serving.create(unique, models, version=1)
    return unique


def test_create_list_get(client: milepost.Client, models: str, unique: str) -> None:
    spec = client.create_endpoint(unique, models, version=2, replicas=2)
    assert [(v.name, v.role) for v in spec.variants] == [(f"{models}-v2", "primary")]
    assert unique in client.list_endpoints()
    got = client.get_endpoint(unique)
    assert got == spec and got.replicas == 2 and got.kind == "pinned"
    with pytest.raises(NotFound, match="no version 9"):
        client.create_endpoint(f"{unique}-x", models, version=9)
    with pytest.raises(InvalidInput, match="Endpoint name"):
        client.create_endpoint("bad name!", models, version=1)
    with pytest.raises(NotFound):
        client.get_endpoint(f"{unique}-missing")


def test_canary_advances_to_primary_and_rolls_back(client: milepost.Client, endpoint: str) -> None:
    policy = CanaryPolicy(steps=[10, 100], min_seconds=0, min_requests=1)
    spec = client.update_endpoint(endpoint, 3, strategy="canary", policy=policy)
    canary = spec.variant(f"{MODEL}-v3")
    assert canary is not None and (canary.role, canary.weight) == ("canary", 10)
    assert spec.rollout is not None and spec.rollout.canary == policy
    with pytest.raises(Conflict):
        client.update_endpoint(endpoint, 2, strategy="blue_green")
    spec = client.advance_endpoint(endpoint, reason="looks fine")
    assert spec.variant(f"{MODEL}-v3").weight == 100  # type: ignore[union-attr]
    spec = client.advance_endpoint(endpoint)
    assert spec.primary.name == f"{MODEL}-v3"
    spec = client.rollback_endpoint(endpoint, reason="second thoughts")
    assert spec.primary.name == f"{MODEL}-v1"
    assert spec.rollout is not None and spec.rollout.status == "rolled_back"
    with pytest.raises(Conflict, match="Nothing to roll back"):
        client.rollback_endpoint(endpoint)
    kinds = [e["kind"] for e in client.get_endpoint_status(endpoint)["events"]]
    assert kinds[:4] == ["rollback", "canary.promote", "canary.advance", "canary.start"]


def test_blue_green_and_shadow(client: milepost.Client, endpoint: str) -> None:
    spec = client.update_endpoint(endpoint, 3, strategy="blue_green")
    assert {v.name: v.role for v in spec.variants} == {
        f"{MODEL}-v1": "primary",
        f"{MODEL}-v3": "standby",
    }
    spec = client.advance_endpoint(endpoint)  # the preview takes all traffic
    assert spec.primary.name == f"{MODEL}-v3"
    spec = client.rollback_endpoint(endpoint)
    assert spec.primary.name == f"{MODEL}-v1"
    spec = client.update_endpoint(endpoint, 2, strategy="shadow", share=0.5)
    shadow = spec.variant(f"{MODEL}-v2")
    assert shadow is not None and (shadow.role, shadow.share) == ("shadow", 0.5)
    with pytest.raises(InvalidInput, match="share goes with strategy='shadow'"):
        client.update_endpoint(endpoint, 2, strategy="canary", share=0.5)
    with pytest.raises(InvalidInput, match="Shadow share"):
        client.update_endpoint(endpoint, 2, strategy="shadow", share=2.0)


def test_status_counts_each_variants_traffic(
    client: milepost.Client,
    platform: dict[str, Any],
    endpoint: str,
    churn_frame: pd.DataFrame,
) -> None:
    rows = churn_frame[FEATURES].head(40)
    now = int(time.time() * 1000)
    log_predictions(
        platform["rt"], endpoint, f"{MODEL}-v1", rows, start_ms=now - 60_000, version=1, errors=4
    )
    status = client.get_endpoint_status(endpoint, window_seconds=600)
    assert status["endpoint"] == endpoint and status["kind"] == "pinned"
    assert [v["name"] for v in status["variants"]] == [f"{MODEL}-v1"]
    stats = status["stats"][f"{MODEL}-v1"]
    assert stats["requests"] == 40 and stats["errors"] == 4
    assert status["window"]["until"] - status["window"]["since"] == 600_000
    with pytest.raises(InvalidInput, match="window_seconds"):
        client.get_endpoint_status(endpoint, window_seconds=-1)


def test_a_remote_rollback_is_the_tokens_user_in_the_audit_trail(
    platform: dict[str, Any], endpoint: str
) -> None:
    rt = platform["rt"]
    rt.serving.canary(endpoint, 2)
    _, viewer = rt.tokens.create("ops-viewer", "viewer", user="vera")
    with remote_runtime(platform, viewer) as remote:
        client = milepost.Client(remote)
        assert client.get_endpoint(endpoint).rollout is not None  # reading is for viewers
        with pytest.raises(PermissionDenied, match="approver"):
            client.rollback_endpoint(endpoint)
    _, approver = rt.tokens.create("ops-approver", "approver", user="bob")
    with remote_runtime(platform, approver) as remote:
        milepost.Client(remote).rollback_endpoint(endpoint, reason="by bob")
    event = rt.audit.list(object_type="endpoint", object_id=endpoint, limit=1)[0]
    assert (event.action, event.actor, event.reason) == ("deploy.rollback", "bob", "by bob")
    assert rt.serving.store.events(endpoint)[0].actor == "bob"
