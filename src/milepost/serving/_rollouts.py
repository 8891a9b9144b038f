"""The rollout state machine: each strategy's change of an endpoint's spec.

:class:`~milepost.serving.service.DeploymentService` checks its arguments, loads and
checks the versions, and applies one of these functions inside one audited update (with
the spec read under the update's lock), so each function sees the spec as it is now and
raises ``Conflict`` when it moved. None of them touches a store.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from milepost import _validate as check
from milepost.errors import Conflict, InvalidInput
from milepost.serving._registry import IN_PROGRESS
from milepost.serving.spec import CanaryPolicy, EndpointSpec, Rollout, Variant

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "abort_rolling",
    "advance",
    "busy",
    "canary_rollout",
    "checked_policy",
    "complete_rolling",
    "finalize",
    "now",
    "roll_back",
    "shadow_to_canary",
    "start",
    "switch",
]


def now() -> int:
    """The time in epoch ms."""
    return int(time.time() * 1000)


def busy(spec: EndpointSpec, what: str) -> None:
    """Refuse to start ``what`` while a rollout is under way."""
    ro = spec.rollout
    if ro is not None and ro.status in IN_PROGRESS:
        raise Conflict(
            f"A {ro.kind} rollout of {ro.candidate} is {ro.status}; cannot start {what}.",
            hint="Finish it (switch, promote, finalize) or roll it back first.",
        )


def start(
    spec: EndpointSpec,
    candidate: Variant,
    what: str,
    rollout: Callable[[EndpointSpec], Rollout],
) -> EndpointSpec:
    """Start a rollout of ``candidate`` (``what``, for the refusal): the previous standby
    or shadow goes, the candidate joins, and ``rollout`` (given the spec) describes it."""
    busy(spec, what)
    spec.variants = [v for v in spec.variants if v.role not in ("standby", "shadow")]
    existing = spec.variant(candidate.name)
    if existing is not None:
        raise Conflict(f"{candidate.name} is already in this endpoint ({existing.role}).")
    spec.variants.append(candidate)
    spec.rollout = rollout(spec)
    return spec


def checked_policy(policy: object) -> CanaryPolicy:
    """A canary policy whose steps rise from above 0 to at most 100."""
    if not isinstance(policy, CanaryPolicy):
        raise InvalidInput(
            f"A canary policy is a CanaryPolicy, got {check.short_repr(policy)} "
            f"({type(policy).__name__}).",
            hint="milepost.serving.CanaryPolicy(steps=[10, 50, 100], ...)",
        )
    if (
        not policy.steps
        or any(not 0 < s <= 100 for s in policy.steps)
        or policy.steps != sorted(policy.steps)
    ):
        raise InvalidInput(f"Canary steps {policy.steps} must rise from above 0 to at most 100.")
    return policy


def canary_rollout(
    candidate: str, previous: str, policy: CanaryPolicy, how: str, request_id: str | None
) -> Rollout:
    """A canary at its first step."""
    return Rollout(
        kind="canary",
        status="progressing",
        candidate=candidate,
        previous=previous,
        step=0,
        step_started_at=now(),
        canary=policy,
        detail=f"{how}: {policy.steps[0]:g}% of traffic",
        request_id=request_id,
    )


def shadow_to_canary(
    spec: EndpointSpec, shadow: str, policy: CanaryPolicy, request_id: str | None
) -> EndpointSpec:
    """Shadow: the mirrored version ``shadow`` becomes a canary at its first step."""
    r = spec.rollout
    v = spec.variant(shadow)
    if r is None or r.kind != "shadow" or r.status != "mirroring" or v is None:
        raise Conflict("The shadow changed meanwhile; see `milepost endpoints show`.")
    v.role, v.weight, v.share = "canary", policy.steps[0], 0.0
    spec.rollout = canary_rollout(v.name, spec.primary.name, policy, "from shadow", request_id)
    return spec


def switch(spec: EndpointSpec, name: str, reason: str | None) -> EndpointSpec:
    """Blue/green: the candidate becomes primary, the previous one standby."""
    ro = spec.rollout
    if ro is None or ro.kind != "blue_green" or ro.status != "preview":
        raise Conflict(
            "No blue/green preview to switch to.",
            hint="Start one with `milepost endpoints update "
            f"{name} VERSION --strategy blue-green`.",
        )
    for v in spec.variants:
        if v.name == ro.candidate:
            v.role, v.weight = "primary", 0
        elif v.name == ro.previous:
            v.role, v.weight = "standby", 0
    ro.status = "switched"
    ro.detail = "all traffic on the candidate; previous kept warm" + (
        f" ({reason})" if reason else ""
    )
    return spec


def complete_rolling(spec: EndpointSpec) -> EndpointSpec:
    """Rolling: every replica runs the candidate; it becomes primary."""
    ro = spec.rollout
    if ro is None or ro.kind != "rolling" or ro.status != "in_progress":
        raise Conflict("No rolling update in progress.")
    for v in spec.variants:
        if v.name == ro.candidate:
            v.role = "primary"
        elif v.name == ro.previous:
            v.role = "standby"
    ro.status, ro.detail = "succeeded", "every replica replaced"
    return spec


def advance(spec: EndpointSpec, reason: str) -> EndpointSpec:
    """Canary: the next step, or at the last one, primary."""
    ro = spec.rollout
    if (
        ro is None
        or ro.kind != "canary"
        or ro.canary is None
        or ro.status
        not in (
            "progressing",
            "paused",
        )
    ):
        raise Conflict("No canary in progress.")
    cand = spec.variant(ro.candidate)
    assert cand is not None
    if ro.step + 1 >= len(ro.canary.steps) or ro.canary.steps[ro.step] >= 100:
        prev = spec.variant(ro.previous or "")
        cand.role, cand.weight = "primary", 0
        if prev is not None:
            prev.role, prev.weight = "standby", 0
        ro.status, ro.detail = "succeeded", f"promoted to primary: {reason}"
    else:
        ro.step += 1
        cand.weight = ro.canary.steps[ro.step]
        ro.step_started_at = now()
        ro.status = "progressing"
        ro.detail = f"step {ro.step + 1}: {cand.weight:g}% of traffic ({reason})"
    return spec


def roll_back(spec: EndpointSpec, text: str, only_in_progress: bool) -> EndpointSpec:
    """Back to the previous version (still loaded); the candidate goes."""
    ro = spec.rollout
    if ro is None or ro.previous is None or ro.status in ("rolled_back", "finalized"):
        raise Conflict(
            "Nothing to roll back: no rollout whose previous version is still kept.",
            hint="See `milepost endpoints show`.",
        )
    if only_in_progress and ro.status not in IN_PROGRESS:
        raise Conflict(f"The {ro.kind} rollout was decided meanwhile ({ro.status}).")
    if spec.variant(ro.previous) is None:
        raise Conflict(f"The previous version {ro.previous} was finalized away; deploy it again.")
    spec.variants = [v for v in spec.variants if v.name != ro.candidate]
    for v in spec.variants:
        if v.name == ro.previous:
            v.role, v.weight, v.share = "primary", 0, 0.0
    ro.status, ro.detail = "rolled_back", text
    return spec


def finalize(spec: EndpointSpec) -> EndpointSpec:
    """Retire the previous version of a completed rollout."""
    ro = spec.rollout
    if ro is None or ro.status not in ("switched", "succeeded"):
        raise Conflict("Nothing to finalize: finish the rollout (switch or promote) first.")
    spec.variants = [v for v in spec.variants if v.role != "standby"]
    ro.status, ro.detail = "finalized", "previous version retired"
    return spec


def abort_rolling(spec: EndpointSpec, reason: str) -> EndpointSpec:
    """Rolling: a new replica never became ready; the candidate goes."""
    ro = spec.rollout
    if ro is None or ro.kind != "rolling" or ro.status != "in_progress":
        raise Conflict("No rolling update to abort.")
    spec.variants = [v for v in spec.variants if v.name != ro.candidate]
    ro.status, ro.detail = "rolled_back", reason
    return spec
