"""The retraining template's deployments: the staging endpoint pinned to the version in
Staging, and the first deployment when the policy deploys automatically and its endpoint
does not exist yet (promoted through the Production gates, then the endpoint created).

Steps called as plain functions (``run_steps``) on the demo's data, in a tmp home with
real registry, gates and endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.errors import InvalidInput
from milepost.features import FeatureStore
from milepost.retraining import Decision, run_steps
from tests.unit.test_retraining import (
    ARGS,
    FEATURES,
    LINEAR,
    METRIC_GATE,
    MODEL,
    REPO,
    WEAK,
    _home,
)

STAGING = "churn-staging"
LIVE = "churn-live"
AUTO = {"automatic": True, "endpoint": LIVE, "steps": [25, 100], "min_seconds": 2}


@pytest.fixture
def home(tmp_path: Path) -> milepost.Runtime:
    """The demo's customers and features, materialized (endpoints serve online features)."""
    rt = _home(tmp_path, None)
    FeatureStore(REPO).materialize_incremental()
    return rt


def _run(**params: Any) -> dict[str, Decision]:
    decisions = run_steps(**ARGS, feature_repo=REPO, **params)
    # two decisions come from deployment steps: deploy_staging, then deploy_model
    assert [d.step for d in decisions][-2:] == ["deploy_staging", "deploy_model"]
    return {d.step: d for d in decisions}


def _served(name: str) -> list[tuple[int, str]]:
    return [(v.version, v.role) for v in milepost.Client().get_endpoint(name).variants]


def test_the_staging_endpoint_is_created_then_switched_to_each_new_version(
    home: milepost.Runtime,
) -> None:
    first = _run(features=FEATURES, train=LINEAR, staging_endpoint=STAGING)
    staged = first["deploy_staging"]
    assert staged.action == "staging endpoint created"
    assert staged.details["endpoint"] == STAGING
    assert f"{MODEL} v1 (Staging) serves on {STAGING!r}" in staged.reasons[0]
    client = milepost.Client()
    spec = client.get_endpoint(STAGING)
    assert spec.track is None  # pinned: the registry's stages do not move it
    assert _served(STAGING) == [(1, "primary")]

    second = _run(staging_endpoint=STAGING)  # default trees beat the linear model
    staged = second["deploy_staging"]
    assert staged.action == "staging endpoint switched"
    assert "in place of churn v1" in staged.reasons[0]
    assert _served(STAGING) == [(2, "primary")]  # the old version retired
    rollout = client.get_endpoint(STAGING).rollout
    assert rollout is not None and (rollout.kind, rollout.status) == ("blue_green", "finalized")
    # every change of the endpoint is audited, in order
    actions = [e.action for e in client.list_audit_events(object_id=STAGING)]
    assert actions[:3] == ["deploy.finalize", "deploy.blue_green.switch", "deploy.blue_green.start"]


def test_no_staging_endpoint_and_a_refused_candidate_are_decisions(
    home: milepost.Runtime,
) -> None:
    first = _run(features=FEATURES, train=LINEAR)
    assert first["deploy_staging"].action == "no staging endpoint"
    assert "staging_endpoint" in first["deploy_staging"].reasons[0]
    milepost.Client().set_promotion_policy(MODEL, {"staging": [METRIC_GATE]})
    refused = _run(train=WEAK, staging_endpoint=STAGING)
    assert refused["promote_to_staging"].action.startswith("not promoted")
    assert refused["deploy_staging"].action == "not deployed"
    assert "v2 is not in Staging: not promoted" in refused["deploy_staging"].reasons[0]
    assert STAGING not in milepost.Client().list_endpoints()


def test_a_staging_endpoint_that_tracks_production_is_refused(home: milepost.Runtime) -> None:
    _run(features=FEATURES, train=LINEAR)  # no policy: v1 enters Production
    milepost.Client().create_endpoint(STAGING, MODEL)  # tracks Production
    with pytest.raises(InvalidInput, match="a staging endpoint is pinned"):
        _run(staging_endpoint=STAGING)


def test_first_deployment_promotes_through_the_gates_then_creates_the_endpoint(
    home: milepost.Runtime,
) -> None:
    client = milepost.Client()
    # the policy is set before the model exists (the project's one-time setup)
    client.set_promotion_policy(
        MODEL,
        {"staging": [{"kind": "data_validation"}], "production": [METRIC_GATE], "deploy": AUTO},
    )
    decisions = _run(features=FEATURES, train=LINEAR, staging_endpoint=STAGING)
    deploy = decisions["deploy_model"]
    assert deploy.action == "first Production version"
    assert deploy.reasons[0].startswith(f"first Production version: v1 serving on {LIVE!r}")
    assert "better than Production passed" in deploy.reasons[1]
    assert client.get_model(MODEL).production_version == 1
    spec = client.get_endpoint(LIVE)
    assert spec.track is not None and spec.track.model == MODEL
    assert _served(LIVE) == [(1, "primary")]
    assert _served(STAGING) == [(1, "primary")]
    request = client.get_promotion_request(deploy.details["request_id"])
    assert (request.status, request.version) == ("completed", 1)

    # the next run: the endpoint exists, so a canary of v2 starts; staging serves v2
    second = _run(staging_endpoint=STAGING)
    assert second["deploy_model"].action == "canary started"
    assert _served(LIVE) == [(1, "primary"), (2, "canary")]
    assert _served(STAGING) == [(2, "primary")]

    # a release while v2's canary is still in progress: v3 is staged, and not deploying it
    # is a recorded decision (the run succeeds), not a failed run; the canary goes on
    third = _run(staging_endpoint=STAGING)
    assert third["deploy_model"].action == "not deployed"
    assert third["deploy_model"].reasons[0].startswith(f"the endpoint {LIVE!r} refused")
    assert "v3 stays in Staging" in third["deploy_model"].reasons[1]
    assert _served(LIVE) == [(1, "primary"), (2, "canary")]
    assert _served(STAGING) == [(3, "primary")]


def test_first_deployment_waits_for_an_approver_without_an_endpoint(
    home: milepost.Runtime,
) -> None:
    client = milepost.Client()
    client.set_promotion_policy(
        MODEL,
        {"production": [METRIC_GATE, {"kind": "approval", "role": "approver"}], "deploy": AUTO},
    )
    deploy = _run(features=FEATURES, train=LINEAR)["deploy_model"]
    assert deploy.action == "pending approval"
    request_id = deploy.details["request_id"]
    assert f"milepost promotions approve {request_id[:12]}" in deploy.reasons[0]
    assert client.get_promotion_request(request_id).status == "pending_approval"
    assert LIVE not in client.list_endpoints()  # no endpoint before Production exists
    assert client.get_model(MODEL).production_version is None


def test_first_deployment_refused_by_the_gates_creates_nothing(home: milepost.Runtime) -> None:
    client = milepost.Client()
    client.set_promotion_policy(MODEL, {"production": [METRIC_GATE], "deploy": AUTO})
    deploy = _run(features=FEATURES, train=WEAK)["deploy_model"]  # ROC AUC 0.5 < 0.6
    assert deploy.action == "not deployed"
    assert "the Production gates refused it: better than Production" in deploy.reasons[0]
    assert client.get_promotion_request(deploy.details["request_id"]).status == "refused"
    assert LIVE not in client.list_endpoints()
    assert client.get_model_version(MODEL, 1).stage == "Staging"


def test_an_endpoint_is_created_for_an_existing_production_version_then_the_canary(
    home: milepost.Runtime,
) -> None:
    _run(features=FEATURES, train=LINEAR)  # no policy yet: v1 enters Production
    client = milepost.Client()
    client.set_promotion_policy(MODEL, {"production": [METRIC_GATE], "deploy": AUTO})
    deploy = _run()["deploy_model"]
    assert deploy.action == "canary started"
    assert deploy.reasons[0] == (
        f"{LIVE!r} did not exist: created, tracking Production of {MODEL} (v1)"
    )
    assert _served(LIVE) == [(1, "primary"), (2, "canary")]
    assert client.get_model(MODEL).production_version == 1  # until the canary ends
