"""The rollout state machine on a spec alone: each strategy's change, and its refusals."""

from __future__ import annotations

import pytest

from milepost.errors import Conflict, InvalidInput
from milepost.serving import _rollouts as rollouts
from milepost.serving.spec import CanaryPolicy, EndpointSpec, Variant


def _spec() -> EndpointSpec:
    return EndpointSpec(
        variants=[
            Variant(name="m-v1", model="m", version=1, role="primary"),
            Variant(name="m-v3", model="m", version=3, role="standby"),
        ]
    )


def _canary(spec: EndpointSpec, steps: list[float]) -> EndpointSpec:
    policy = rollouts.checked_policy(CanaryPolicy(steps=steps))
    candidate = Variant(name="m-v2", model="m", version=2, role="canary", weight=steps[0])
    return rollouts.start(
        spec,
        candidate,
        "a canary",
        lambda s: rollouts.canary_rollout("m-v2", s.primary.name, policy, "step 1", "r1"),
    )


def test_a_canary_climbs_its_steps_then_becomes_primary_and_rolls_back_to_the_previous() -> None:
    spec = _canary(_spec(), [10, 50, 100])
    assert [v.role for v in spec.variants] == ["primary", "canary"]  # the old standby went
    assert spec.rollout is not None and spec.rollout.request_id == "r1"
    spec = rollouts.advance(spec, "good")
    candidate = spec.variant("m-v2")
    assert candidate is not None and candidate.weight == 50
    assert spec.rollout is not None
    assert spec.rollout.step == 1 and spec.rollout.status == "progressing"
    spec = rollouts.advance(spec, "good")
    spec = rollouts.advance(spec, "good")
    assert spec.primary.name == "m-v2" and spec.rollout.status == "succeeded"
    assert {v.name: v.role for v in spec.variants} == {"m-v1": "standby", "m-v2": "primary"}
    with pytest.raises(Conflict, match="decided meanwhile"):
        rollouts.roll_back(spec, "late", only_in_progress=True)
    spec = rollouts.roll_back(spec, "by hand", only_in_progress=False)
    assert [(v.name, v.role) for v in spec.variants] == [("m-v1", "primary")]
    assert spec.rollout.status == "rolled_back" and spec.rollout.detail == "by hand"
    with pytest.raises(Conflict, match="Nothing to roll back"):
        rollouts.roll_back(spec, "again", only_in_progress=False)


def test_a_rollout_under_way_refuses_another_and_a_version_already_there() -> None:
    spec = _canary(_spec(), [10, 100])
    with pytest.raises(Conflict, match="canary rollout of m-v2 is progressing"):
        _canary(spec, [20])
    fresh = EndpointSpec(variants=[Variant(name="m-v2", model="m", version=2, role="primary")])
    with pytest.raises(Conflict, match="already in this endpoint"):
        _canary(fresh, [10])


def test_each_transition_refuses_a_rollout_of_another_kind() -> None:
    spec = _canary(_spec(), [10, 100])
    with pytest.raises(Conflict, match="No blue/green preview"):
        rollouts.switch(spec, "e", None)
    with pytest.raises(Conflict, match="No rolling update in progress"):
        rollouts.complete_rolling(spec)
    with pytest.raises(Conflict, match="No rolling update to abort"):
        rollouts.abort_rolling(spec, "why")
    with pytest.raises(Conflict, match="Nothing to finalize"):
        rollouts.finalize(spec)
    with pytest.raises(Conflict, match="The shadow changed meanwhile"):
        rollouts.shadow_to_canary(spec, "m-v2", CanaryPolicy(), None)


@pytest.mark.parametrize("steps", [[], [0], [50, 10], [10, 150]])
def test_a_canary_policy_must_rise_from_above_zero_to_at_most_100(steps: list[float]) -> None:
    with pytest.raises(InvalidInput, match="must rise"):
        rollouts.checked_policy(CanaryPolicy(steps=steps))
    with pytest.raises(InvalidInput, match="is a CanaryPolicy"):
        rollouts.checked_policy({"steps": steps})
