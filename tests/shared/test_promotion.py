"""Promotion policies, requests, approvals and rejections, embedded and remote: the same
calls, the same records, the same refusals (the four-eyes rule with two users)."""

from __future__ import annotations

from typing import Any

import pytest

import milepost
from milepost.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from milepost.promotion import PromotionPolicy, PromotionRequest
from tests.shared._registry import client_of, register_model, remote_runtime, token_of

APPROVAL = {"production": [{"kind": "approval", "role": "approver"}]}


@pytest.fixture
def model(platform: dict[str, Any], unique: str) -> str:
    rt = platform["rt"]
    register_model(rt, unique)
    if not rt.roles.has("alice", "approver"):  # so that only the four-eyes rule stops her
        rt.roles.grant("alice", "approver")
    return unique


def test_policy_round_trip(client: milepost.Client, platform: dict[str, Any], model: str) -> None:
    stored = client.set_promotion_policy(model, APPROVAL)
    assert isinstance(stored, PromotionPolicy)
    assert stored.to_dict() == platform["rt"].promotion.get_policy(model).to_dict()
    assert [g.kind for g in stored.production] == ["approval"]
    yaml_text = "staging: []\nproduction:\n  - {kind: approval, count: 1}\n"
    assert client.set_promotion_policy(model, yaml_text).to_dict() == stored.to_dict()
    assert client.get_model(model).has_policy
    assert client.set_promotion_policy(model, None).empty
    assert not client.get_model(model).has_policy


def test_a_policy_set_before_the_first_version_creates_the_model(
    client: milepost.Client, runtime: Any, platform: dict[str, Any], unique: str
) -> None:
    """An approver puts a project's policy in place before its first run: the model is
    created (audited, no versions); the first version registered then meets the policy."""
    rt = platform["rt"]
    with pytest.raises(InvalidInput, match="production"):
        client.set_promotion_policy(unique, {"production": [{"kind": "nope"}]})
    with pytest.raises(NotFound):  # an invalid policy created nothing
        client.get_model(unique)
    stored = client.set_promotion_policy(unique, APPROVAL)
    assert [g.kind for g in stored.production] == ["approval"]
    model = client.get_model(unique)
    assert (model.latest_version, model.stages, model.has_policy) == (None, {}, True)
    assert model.created_by == "alice"
    assert runtime.promotion.get_policy(unique).to_dict() == stored.to_dict()
    events = client.list_audit_events(object_type="model", object_id=unique)
    assert [e.action for e in events] == ["model.policy", "model.create"]  # newest first
    assert rt.audit.verify().ok
    register_model(rt, unique, versions=1)
    assert client.get_model(unique).latest_version == 1
    assert client.promote(unique, 1, "production").status == "pending_approval"
    with pytest.raises(NotFound):  # clearing needs the model: nothing to clear
        client.set_promotion_policy(f"{unique}x", None)


def test_request_then_a_second_user_approves(
    client: milepost.Client, platform: dict[str, Any], mode: str, model: str
) -> None:
    client.set_promotion_policy(model, APPROVAL)
    req = client.promote(model, 2, "production", reason="better")
    assert isinstance(req, PromotionRequest)
    assert (req.status, req.requested_by, req.target_stage) == (
        "pending_approval",
        "alice",
        "Production",
    )
    assert [(g.kind, g.status) for g in req.gates] == [("approval", "pending")]
    assert client.get_promotion_request(req.request_id[:8]).to_dict() == req.to_dict()
    assert [r.request_id for r in client.list_promotion_requests(model=model)] == [req.request_id]
    pending = client.list_promotion_requests(status="pending_approval", model=model)
    assert [r.to_dict() for r in pending] == [
        r.to_dict()
        for r in platform["rt"].promotion.list_requests(status="pending_approval", model=model)
    ]
    with pytest.raises(PermissionDenied, match="cannot approve it too"):
        client.approve(req.request_id)  # four eyes: alice asked
    with client_of(platform, mode, "bob", "approver") as bob:
        done = bob.approve(req.request_id, reason="looks good")
    assert (done.status, done.decided_by) == ("completed", "bob")
    assert done.gates[0].status == "passed" and done.gates[0].evaluated_by == "bob"
    assert client.get_model(model).production_version == 2
    assert client.get_model_history(model)[-1].to_stage == "Production"
    with pytest.raises(Conflict, match="not awaiting approval"):
        client.approve(req.request_id)


def test_reject(client: milepost.Client, platform: dict[str, Any], mode: str, model: str) -> None:
    client.set_promotion_policy(model, APPROVAL)
    req = client.promote(model, 1, "production")
    with client_of(platform, mode, "bob", "approver") as bob:
        rejected = bob.reject(req.request_id, reason="not yet")
    assert (rejected.status, rejected.decision_reason) == ("rejected", "not yet")
    assert rejected.gates[0].status == "failed"
    assert client.get_model(model).production_version is None
    assert client.list_promotion_requests(status=("rejected", "completed"), model=model)[
        0
    ].to_dict() == (rejected.to_dict())


def test_staging_without_gates_completes(client: milepost.Client, model: str) -> None:
    req = client.promote(model, 1, "staging")
    assert req.status == "completed"
    assert client.get_model_version(model, 1).stage == "Staging"


def test_roles_over_http(platform: dict[str, Any], unique: str) -> None:
    """A viewer cannot write; a member may request a promotion an approval gate guards,
    but moving Production with no approval gate in the way needs approver."""
    register_model(platform["rt"], unique)
    viewer = remote_runtime(platform, token_of(platform, "vera", "viewer"))
    member = remote_runtime(platform, token_of(platform, "mia", "member"))
    try:
        assert milepost.Client(viewer).get_model(unique).latest_version == 2
        with pytest.raises(PermissionDenied, match="needs the member role"):
            milepost.Client(viewer).set_alias(unique, "champion", 1)
        with pytest.raises(PermissionDenied, match="needs the member role"):
            milepost.Client(viewer).promote(unique, 1, "staging")
        with pytest.raises(PermissionDenied, match="needs the approver role"):
            milepost.Client(member).promote(unique, 1, "production")
        with pytest.raises(PermissionDenied, match="needs the approver role"):
            milepost.Client(member).set_promotion_policy(unique, APPROVAL)
        platform["rt"].promotion.set_policy(unique, APPROVAL)
        req = milepost.Client(member).promote(unique, 1, "production")
        assert (req.status, req.requested_by) == ("pending_approval", "mia")
        with pytest.raises(PermissionDenied, match="needs the approver role"):
            milepost.Client(member).approve(req.request_id)
        assert milepost.Client(member).get_model(unique).production_version is None
    finally:
        viewer.close()
        member.close()


def test_archiving_the_production_version_needs_approver(
    platform: dict[str, Any], unique: str
) -> None:
    rt = platform["rt"]
    register_model(rt, unique)
    rt.promotion.promote(unique, 1, "production")
    member = remote_runtime(platform, token_of(platform, "mia", "member"))
    try:
        with pytest.raises(PermissionDenied, match="needs the approver role"):
            milepost.Client(member).archive_model_version(unique, 1)
        milepost.Client(member).archive_model_version(unique, 2, reason="never used")
        assert [v.stage for v in rt.models.versions(unique)] == ["Production", "Archived"]
    finally:
        member.close()
