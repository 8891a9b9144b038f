"""The release pipeline as a project's main-branch CI runs it: a **member** token asks a
live ``milepost server`` to run ``milepost.retraining:retrain`` (POST /pipelines/runs);
the steps request promotions and create and update endpoints in the server's process as
that member. Nothing on that path needs the approver role: an approver set the policy
once, before the first model existed, and only an approval gate would stop the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.client import RemoteRuntime
from milepost.config import load_settings
from milepost.demo.data import LABEL, generate_customers
from milepost.errors import PermissionDenied
from milepost.features import FeatureStore
from tests._server import platform_server
from tests.unit.test_retraining import FEATURES, LINEAR, METRIC_GATE, REPO

MODEL = "churn"
LIVE = "churn-live"
STAGING = "churn-staging"
PARAMS: dict[str, Any] = {
    "model": MODEL,
    "labels": "customers",
    "target": LABEL,
    "feature_repo": REPO,
    "staging_endpoint": STAGING,
}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A server over a home with the demo's customers and features (materialized), the
    policy set by an approver before the model exists, and a member's token."""
    rt = milepost.configure(home=tmp_path / "home", user="alice", metric_flush_interval=0.05)
    milepost.data.register("customers", generate_customers(1200, seed=3))
    store = FeatureStore(REPO)
    store.apply()
    store.materialize_incremental()
    rt.roles.grant("alice", "approver")
    rt.promotion.set_policy(
        MODEL,
        {
            "staging": [{"kind": "data_validation"}],
            "production": [METRIC_GATE],
            "deploy": {"automatic": True, "endpoint": LIVE, "steps": [25, 100]},
        },
    )
    _, member = rt.tokens.create("ci", "member", user="mia")
    with platform_server(rt) as url:
        remote = RemoteRuntime(
            load_settings(env={"MILEPOST_URL": url, "MILEPOST_TOKEN": member}, cwd=tmp_path)
        )
        try:
            yield {"rt": rt, "remote": remote}
        finally:
            remote.close()


def _served(client: milepost.Client, endpoint: str) -> list[tuple[int, str]]:
    return [(v.version, v.role) for v in client.get_endpoint(endpoint).variants]


def test_a_member_runs_the_release_twice_first_deployment_then_a_canary(
    platform: dict[str, Any],
) -> None:
    remote = platform["remote"]
    client = milepost.Client(remote)
    with pytest.raises(PermissionDenied, match="approver"):  # the member cannot do it by hand
        client.create_endpoint("by-hand", MODEL)

    started = remote.pipelines.run(
        "milepost.retraining:retrain", {**PARAMS, "features": FEATURES, "train": LINEAR}
    )
    assert started.status == "succeeded", started.error
    assert started.actor == "mia"
    first = platform["rt"].pipelines.get_run(started.run_id)  # its outputs, read on the server
    deploy = first.outputs("deploy_model")
    assert deploy.action == "first Production version", deploy.decision
    assert client.get_model(MODEL).production_version == 1
    live = client.get_endpoint(LIVE)
    assert live.track is not None and _served(client, LIVE) == [(1, "primary")]
    assert first.outputs("deploy_staging").action == "staging endpoint created"
    assert _served(client, STAGING) == [(1, "primary")]
    request = client.get_promotion_request(deploy.request_id)
    assert (request.status, request.requested_by) == ("completed", "mia")

    again = remote.pipelines.run("milepost.retraining:retrain", PARAMS)  # Production's refs
    assert again.status == "succeeded", again.error
    second = platform["rt"].pipelines.get_run(again.run_id)
    assert second.outputs("deploy_staging").action == "staging endpoint switched"
    assert _served(client, STAGING) == [(2, "primary")]
    canary = second.outputs("deploy_model")
    assert canary.action == "canary started", canary.decision
    assert _served(client, LIVE) == [(1, "primary"), (2, "canary")]
    rollout = client.get_endpoint(LIVE).rollout
    assert rollout is not None and rollout.status == "progressing"
    assert client.get_promotion_request(canary.request_id).requested_by == "mia"
    # every change was made as the member, and audited as such
    events = client.list_audit_events(object_id=STAGING)
    assert events and {e.actor for e in events} == {"mia"}
