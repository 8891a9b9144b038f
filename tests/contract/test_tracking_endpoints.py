"""Endpoints that track Production of a model: the registry and the endpoint move together.

Every path that could put a version in front of traffic, or move Production behind the
endpoint's back, is exercised here on SQLite and PostgreSQL: each strategy of the
deployment service, the promotion service, the model registry's own calls, and two
processes running the canary controller at once.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import AlreadyExists, Conflict, GateFailed, InvalidInput
from milepost.serving import CanaryPolicy
from tests.contract.conftest import FEATURES
from tests.contract.test_deployments import _log

FAST = CanaryPolicy(steps=[50, 100], min_seconds=0, min_requests=20)
#: a metric gate only a real model passes (against the know-nothing v1)
METRIC = {
    "kind": "metric_vs_baseline",
    "dataset": "churn.test@1",
    "target": "churned",
    "primary": "roc_auc",
    "min_delta": 0.01,
    "threshold": 0.55,
}


@pytest.fixture
def tracked(runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> str:
    """churn v1 (know-nothing) in Production served by ``churn-ep`` (tracks Production),
    v2 (know-nothing too: no better), v3 (a real model), trained on a validated dataset;
    a test set for metric gates."""
    train = milepost.data.register("churn.train", churn_frame.iloc[:2000])
    milepost.data.register("churn.test", churn_frame.iloc[2000:])
    milepost.data.validate(
        train, {"name": "basic", "checks": [{"kind": "not_null", "column": "customer_id"}]}
    )
    for key in ("weak", "weak", "good"):
        with milepost.start_run(experiment="tracking"):
            milepost.log_input(train, role="train")
            milepost.log_model(
                churn_models[key], "churn", input_example=churn_frame[FEATURES].head(3)
            )
    Client().promote("churn", 1, "Production")
    runtime.serving.create("churn-ep", "churn")
    return "churn-ep"


def _stages(c: Client | None = None) -> dict[int, str]:
    return {v.version: v.stage for v in (c or Client()).list_model_versions("churn")}


def _roles(runtime: Runtime, endpoint: str) -> dict[str, str]:
    return {v.name: v.role for v in runtime.serving.get(endpoint)[0].variants}


def _agree(runtime: Runtime, endpoint: str) -> None:
    """The invariant: the endpoint's primary is the registry's one Production version."""
    stages = _stages()
    assert list(stages.values()).count("Production") == 1, stages
    production = next(v for v, s in stages.items() if s == "Production")
    assert runtime.serving.get(endpoint)[0].primary.version == production
    status = runtime.serving.status(endpoint)
    assert status["registry"] == {"production_version": production, "agrees": True}
    report = Client().verify_audit()
    assert report.ok, report.problems


def _promote_by_canary(runtime: Runtime, endpoint: str, version: int, primary: int) -> None:
    svc = runtime.serving
    _log(runtime, endpoint, f"churn-v{version}", 30)
    _log(runtime, endpoint, f"churn-v{primary}", 30)
    assert svc.tick(endpoint).action == "advance"
    _log(runtime, endpoint, f"churn-v{version}", 30)
    _log(runtime, endpoint, f"churn-v{primary}", 5)
    assert svc.tick(endpoint).action == "promote"


def test_create_tracks_production_and_says_which_kind(
    tracked: str, runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    from milepost.serving.spec import Track

    svc = runtime.serving
    spec, _ = svc.get(tracked)
    assert spec.track == Track(model="churn", stage="Production")
    assert spec.kind == "tracks Production of churn" and spec.primary.version == 1
    assert svc.status(tracked)["kind"] == "tracks Production of churn"
    _agree(runtime, tracked)
    # one endpoint per tracked stage; pinned endpoints of the same model stay possible
    with pytest.raises(AlreadyExists, match="'churn-ep' tracks Production of churn already"):
        svc.create("second", "churn", stage="Production")
    pinned = svc.create("pinned", "churn", version=2)
    assert pinned.track is None and pinned.kind == "pinned"
    assert svc.status("pinned")["track"] is None and "registry" not in svc.status("pinned")
    with pytest.raises(InvalidInput, match="either a version to pin"):
        svc.create("both", "churn", version=1, stage="Production")
    with pytest.raises(InvalidInput, match=r"track Production, not 'Staging' \(Staging holds"):
        svc.create("staged", "churn", stage="Staging")
    # no Production version: nothing to track yet
    with milepost.start_run():
        milepost.log_model(
            churn_models["good"], "other", input_example=churn_frame[FEATURES].head(3)
        )
    with pytest.raises(Conflict, match="other has no version in Production"):
        svc.create("other-ep", "other")
    assert svc.list_endpoints() == ["churn-ep", "pinned"]
    assert svc.endpoints() == svc.list_endpoints()  # the old name, one more release


def test_a_canary_carries_its_promotion_and_its_end_moves_both_at_once(
    tracked: str, runtime: Runtime
) -> None:
    svc = runtime.serving
    c = Client()
    spec = svc.canary(tracked, 3, policy=FAST)
    request_id = spec.rollout.request_id  # type: ignore[union-attr]
    assert request_id is not None
    req = c.get_promotion_request(request_id)
    assert (req.status, req.version, req.target_stage, req.endpoint) == (
        "rolling_out",
        3,
        "Production",
        "churn-ep",
    )
    # taking canary traffic is not being in Production: the registry has not moved
    assert _stages() == {1: "Production", 2: "None", 3: "None"}
    _agree(runtime, tracked)
    _promote_by_canary(runtime, tracked, 3, 1)
    assert _stages() == {1: "Archived", 2: "None", 3: "Production"}
    assert _roles(runtime, tracked) == {"churn-v1": "standby", "churn-v3": "primary"}
    _agree(runtime, tracked)
    req = c.get_promotion_request(request_id)
    assert req.status == "completed"
    assert req.gates[-1].kind == "rollout" and req.gates[-1].status == "passed"
    assert req.gates[-1].name == "canary on churn-ep"
    last = c.get_model_history("churn")[-1]
    assert (last.version, last.to_stage, last.request_id) == (3, "Production", request_id)
    # the stage change and the endpoint change are one transaction: one audit event each,
    # written together
    stage = c.list_audit_events(action="model_version.stage")[0]
    promote = c.list_audit_events(action="deploy.canary.promote")[0]
    assert stage.after["endpoint"] == "churn-ep" and stage.after["request_id"] == request_id
    assert abs(stage.seq - promote.seq) == 1


def test_rollback_after_completion_returns_registry_and_endpoint_together(
    tracked: str, runtime: Runtime
) -> None:
    svc = runtime.serving
    c = Client()
    request_id = svc.canary(tracked, 3, policy=FAST).rollout.request_id  # type: ignore[union-attr]
    _promote_by_canary(runtime, tracked, 3, 1)
    spec = svc.rollback(tracked, reason="complaints")
    assert spec.primary.name == "churn-v1" and [v.name for v in spec.variants] == ["churn-v1"]
    assert _stages() == {1: "Production", 2: "None", 3: "Archived"}
    _agree(runtime, tracked)
    req = c.get_promotion_request(request_id)  # type: ignore[arg-type]
    assert req.status == "rolled_back"
    assert req.gates[-1].status == "failed" and "complaints" in req.gates[-1].message
    # v3 left Production: it comes back only through Staging and the gates again
    with pytest.raises(Conflict, match="archived version must be re-reviewed"):
        svc.canary(tracked, 3, policy=FAST)
    assert _roles(runtime, tracked) == {"churn-v1": "primary"}


def test_rollback_says_why_not_when_the_previous_version_was_retired(
    tracked: str, runtime: Runtime
) -> None:
    svc = runtime.serving
    svc.blue_green(tracked, 3)
    svc.switch(tracked)
    svc.finalize(tracked)
    with pytest.raises(Conflict, match="Nothing to roll back"):
        svc.rollback(tracked)
    _agree(runtime, tracked)


def test_rollback_says_why_not_when_the_previous_version_moved_on(
    tracked: str, runtime: Runtime
) -> None:
    """The version kept warm for a rollback may be re-reviewed; the registry then has no
    previous Production version to return to, and the rollback says so, changing nothing."""
    svc = runtime.serving
    c = Client()
    svc.blue_green(tracked, 3)
    with pytest.raises(Conflict, match="is rolling it out"):
        c.archive_model_version("churn", 3)  # the candidate of a rollout under way
    svc.switch(tracked)
    c.promote("churn", 1, "Staging", reason="re-review")
    revision = svc.get(tracked)[1]
    with pytest.raises(Conflict, match="Cannot roll churn back to v1: it is in Staging now"):
        svc.rollback(tracked)
    assert svc.get(tracked)[1] == revision
    assert _stages() == {1: "Staging", 2: "None", 3: "Production"}
    _agree(runtime, tracked)


def test_a_canary_whose_gates_fail_takes_no_traffic(tracked: str, runtime: Runtime) -> None:
    """The promotion runs before the canary: a version whose Production gates fail never
    reaches traffic, let alone 100%."""
    svc = runtime.serving
    c = Client()
    c.set_promotion_policy("churn", {"production": [METRIC]})
    revision = svc.get(tracked)[1]
    with pytest.raises(GateFailed, match="refused: metric_vs_baseline"):
        svc.canary(tracked, 2, policy=FAST)
    for start in (svc.blue_green, svc.rolling):
        with pytest.raises(GateFailed):
            start(tracked, 2)
    spec, now = svc.get(tracked)
    assert (
        now == revision
        and spec.rollout is None
        and _roles(runtime, tracked) == {"churn-v1": "primary"}
    )
    refused = c.list_promotion_requests(status="refused")
    assert len(refused) == 3 and {r.version for r in refused} == {2}
    _agree(runtime, tracked)


def test_the_canary_waits_for_an_approval_and_then_carries_it(
    tracked: str, runtime: Runtime
) -> None:
    c = Client()
    c.set_promotion_policy("churn", {"production": [{"kind": "approval"}]})
    runtime.roles.grant("tester", "admin")
    runtime.roles.grant("ana", "approver")
    with pytest.raises(Conflict, match="waits for approval") as info:
        runtime.serving.canary(tracked, 3, policy=FAST)
    request_id = info.value.details["request_id"]  # type: ignore[index]
    assert runtime.serving.get(tracked)[0].rollout is None
    ana = milepost.configure(home=runtime.settings.home, metadata_uri=runtime.db.uri, user="ana")
    approved = Client(ana).approve(request_id)
    # approved: every gate passed, but Production changes with the endpoint, not before
    assert approved.status == "awaiting_rollout" and approved.endpoint == "churn-ep"
    assert _stages(Client(ana)) == {1: "Production", 2: "None", 3: "None"}
    rt = milepost.configure(home=runtime.settings.home, metadata_uri=runtime.db.uri, user="tester")
    spec = rt.serving.canary(tracked, 3, policy=FAST)
    assert spec.rollout is not None and spec.rollout.request_id == request_id
    assert Client(rt).get_promotion_request(request_id).status == "rolling_out"
    _promote_by_canary(rt, tracked, 3, 1)
    assert _stages(Client(rt))[3] == "Production"
    _agree(rt, tracked)


def test_models_promote_waits_for_the_rollout_and_the_registry_refuses_detours(
    tracked: str, runtime: Runtime
) -> None:
    c = Client()
    req = c.promote("churn", 3, "Production", reason="better")
    assert req.status == "awaiting_rollout" and req.endpoint == "churn-ep"
    assert _stages() == {1: "Production", 2: "None", 3: "None"}
    # the Python API's ungated stage change and the archive of what the endpoint serves
    with pytest.raises(Conflict, match="enters Production only through a rollout there") as no:
        runtime.models.transition("churn", 3, "Production")
    assert "`milepost endpoints update churn-ep 3`" in (no.value.hint or "")  # as typed
    with pytest.raises(Conflict, match="serves it as Production"):
        c.archive_model_version("churn", 1)
    _agree(runtime, tracked)
    # the rollout carries that request (no second promotion)
    spec = runtime.serving.canary(tracked, 3, policy=FAST)
    assert spec.rollout is not None and spec.rollout.request_id == req.request_id
    with pytest.raises(Conflict, match="is rolling it out as a canary"):
        c.archive_model_version("churn", 3)
    _promote_by_canary(runtime, tracked, 3, 1)
    assert (
        next(r.request_id for r in c.list_promotion_requests(status="completed")) == req.request_id
    )
    _agree(runtime, tracked)


def test_an_approved_request_goes_stale_when_production_moved(
    tracked: str, runtime: Runtime
) -> None:
    c = Client()
    early = c.promote("churn", 2, "Production")
    assert early.status == "awaiting_rollout" and early.baseline_version == 1
    svc = runtime.serving
    svc.canary(tracked, 3, policy=FAST)
    _promote_by_canary(runtime, tracked, 3, 1)
    # v2's gates compared it with v1: a rollout now runs them again against v3
    spec = svc.canary(tracked, 2, policy=FAST)
    assert spec.rollout is not None and spec.rollout.request_id != early.request_id
    assert c.get_promotion_request(early.request_id).status == "stale"
    assert c.get_promotion_request(spec.rollout.request_id).baseline_version == 3
    _agree(runtime, tracked)


def test_a_failing_canary_is_rolled_back_and_the_registry_records_it(
    tracked: str, runtime: Runtime
) -> None:
    svc = runtime.serving
    c = Client()
    request_id = svc.canary(tracked, 3, policy=FAST).rollout.request_id  # type: ignore[union-attr]
    _log(runtime, tracked, "churn-v1", 100, latency=1.0)
    _log(runtime, tracked, "churn-v3", 40, latency=30.0)
    decision = svc.tick(tracked)
    assert decision.action == "rollback" and "canary p99 30.0 ms > 1.5 x primary 1.0 ms" in (
        decision.reason
    )
    assert _stages() == {1: "Production", 2: "None", 3: "None"}
    assert _roles(runtime, tracked) == {"churn-v1": "primary"}
    req = c.get_promotion_request(request_id)  # type: ignore[arg-type]
    assert req.status == "rolled_back"
    verdict = req.gates[-1]
    assert (verdict.kind, verdict.status) == ("rollout", "failed")
    assert verdict.message.startswith("automatic: canary p99 30.0 ms")
    assert c.list_audit_events(action="promotion.rolled_back")[0].object_id == "churn/3"
    _agree(runtime, tracked)
    # rolled back is an end: a new canary of v3 starts a new promotion
    again = svc.canary(tracked, 3, policy=FAST).rollout.request_id  # type: ignore[union-attr]
    assert again != request_id
    svc.rollback(tracked, reason="not today")
    assert c.get_promotion_request(again).status == "rolled_back"  # type: ignore[arg-type]
    _agree(runtime, tracked)


def test_blue_green_and_rolling_respect_the_registry(tracked: str, runtime: Runtime) -> None:
    svc = runtime.serving
    c = Client()
    c.archive_model_version("churn", 2)
    for start in (svc.blue_green, svc.rolling, svc.canary):
        with pytest.raises(Conflict, match="archived version must be re-reviewed"):
            start(tracked, 2)
    with pytest.raises(InvalidInput, match="serves versions of churn only"):
        svc.blue_green(tracked, 1, model="other")
    # blue/green: the preview takes no traffic and changes nothing; the switch does both
    svc.blue_green(tracked, 3)
    assert _roles(runtime, tracked) == {"churn-v1": "primary", "churn-v3": "standby"}
    assert _stages()[3] == "None"
    _agree(runtime, tracked)
    svc.switch(tracked, reason="ready")
    assert _stages() == {1: "Archived", 2: "Archived", 3: "Production"}
    _agree(runtime, tracked)
    # rolling back a preview: the request ends, nothing else moved
    c.promote("churn", 2, "Staging", reason="re-review")
    svc.finalize(tracked)
    bg = svc.blue_green(tracked, 2).rollout.request_id  # type: ignore[union-attr]
    svc.rollback(tracked)
    assert c.get_promotion_request(bg).status == "rolled_back"  # type: ignore[arg-type]
    # rolling: the supervisors replace replicas; completing it moves the registry too
    rolling = svc.rolling(tracked, 2).rollout.request_id  # type: ignore[union-attr]
    assert _stages()[2] == "Staging"
    svc.complete_rolling(tracked)
    assert _stages() == {1: "Archived", 2: "Production", 3: "Archived"}
    assert c.get_promotion_request(rolling).status == "completed"  # type: ignore[arg-type]
    _agree(runtime, tracked)
    # a rolling update whose replica never starts ends the request, registry unchanged
    svc.finalize(tracked)
    c.promote("churn", 3, "Staging")
    failed = svc.rolling(tracked, 3).rollout.request_id  # type: ignore[union-attr]
    svc.fail_rolling(tracked, "a replica did not become ready")
    assert c.get_promotion_request(failed).status == "rolled_back"  # type: ignore[arg-type]
    assert _stages()[2] == "Production"
    _agree(runtime, tracked)


def test_a_shadow_of_any_version_then_a_canary_with_its_promotion(
    tracked: str, runtime: Runtime
) -> None:
    svc = runtime.serving
    Client().set_promotion_policy("churn", {"production": [METRIC]})
    svc.shadow(tracked, 2, share=0.5)  # answers nobody: no promotion needed
    assert [r.version for r in Client().list_promotion_requests(status=None)] == [1]
    with pytest.raises(GateFailed):
        svc.promote(tracked)  # turning it into a canary needs its gates
    assert _roles(runtime, tracked) == {"churn-v1": "primary", "churn-v2": "shadow"}
    svc.rollback(tracked)
    svc.shadow(tracked, 3)
    spec = svc.promote(tracked, policy=FAST)
    assert spec.rollout is not None and spec.rollout.kind == "canary"
    assert Client().get_promotion_request(spec.rollout.request_id).status == "rolling_out"  # type: ignore[arg-type]
    _promote_by_canary(runtime, tracked, 3, 1)
    _agree(runtime, tracked)


def _tick(args: tuple[str, str, str]) -> str:
    uri, home, endpoint = args
    rt = milepost.configure(home=Path(home), metadata_uri=uri, user="controller")
    try:
        return rt.serving.tick(endpoint).action
    finally:
        milepost.reset()


def test_two_controller_processes_complete_a_canary_once(tracked: str, runtime: Runtime) -> None:
    svc = runtime.serving
    svc.canary(tracked, 3, policy=CanaryPolicy(steps=[100], min_seconds=0, min_requests=20))
    _log(runtime, tracked, "churn-v3", 30)
    _log(runtime, tracked, "churn-v1", 30)
    args = (runtime.db.uri, str(runtime.settings.home), tracked)
    with mp.get_context("spawn").Pool(2) as pool:
        actions = pool.map(_tick, [args, args])
    assert sorted(actions) == ["none", "promote"], actions
    assert _stages() == {1: "Archived", 2: "None", 3: "Production"}
    assert sum(1 for e in Client().get_model_history("churn") if e.to_stage == "Production") == 2
    _agree(runtime, tracked)
