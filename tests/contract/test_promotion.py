"""Gates, approvals and evaluation on every metadata backend."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.demo.data import LABEL
from milepost.errors import Conflict, GateFailed, InvalidInput, PermissionDenied
from milepost.promotion import PromotionPolicy
from milepost.stores.schema import gate_results, registered_models
from tests.contract.conftest import FEATURES


@pytest.fixture
def registered(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> dict[str, Any]:
    """churn v1 (weak) and v2 (good), trained on a validated dataset, plus a test set."""
    train = milepost.data.register("churn.train", churn_frame.iloc[:2000])
    test = milepost.data.register("churn.test", churn_frame.iloc[2000:])
    milepost.data.validate(
        train, {"name": "basic", "checks": [{"kind": "not_null", "column": "customer_id"}]}
    )
    for key in ("weak", "good"):
        with milepost.start_run(experiment="promo"):
            milepost.log_input(train, role="train")
            milepost.log_model(
                churn_models[key], "churn", input_example=churn_frame[FEATURES].head(5)
            )
    return {"train": train, "test": test}


POLICY = """
production:
  - {kind: metric_vs_baseline, dataset: churn.test@1, target: churned, primary: roc_auc,
     min_delta: 0.01, guards: {log_loss: 0.05}, threshold: 0.5}
  - {kind: data_validation, suite: basic}
"""


def test_evaluate_stores_metrics_and_slices(registered: dict[str, Any]) -> None:
    result = milepost.evaluate("models:/churn/2", "churn.test@1", target=LABEL, slices=["gender"])
    assert result.task == "classification" and result.num_rows == 1000
    assert set(result.metrics) == {
        "accuracy",
        "balanced_accuracy",
        "base_rate",
        "pr_auc",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "brier",
    }
    assert 0.6 < (result.metrics["roc_auc"] or 0) < 1
    genders = result.slices["gender"]
    assert sum(v["n"] for v in genders.values()) == 1000 and "female" in genders
    stored = milepost.get_runtime().evaluation.for_version("models:/churn/2")
    assert stored[0].to_dict() == result.to_dict()
    reg = milepost.evaluate(
        "models:/churn/2",
        registered["test"].to_pandas().assign(churned=lambda d: d["monthly_spend"]),
        target=LABEL,
        task="regression",
    )
    assert set(reg.metrics) == {"rmse", "mae", "r2"}
    with pytest.raises(InvalidInput, match="no target column 'label'"):
        milepost.evaluate("models:/churn/2", "churn.test@1", target="label")


def test_first_production_uses_the_threshold_then_the_baseline(registered: dict[str, Any]) -> None:
    c = Client()
    c.set_promotion_policy("churn", POLICY)
    req = c.promote("churn", 1, "Production")
    assert req.status == "completed"
    metric_gate = req.gates[0]
    assert metric_gate.passed and "threshold" in metric_gate.message
    # skill on an imbalanced label reads against the base rate: both are in the message
    first = milepost.get_runtime().evaluation.for_version("models:/churn/1")[0]
    assert first.eval_id == metric_gate.details["candidate_eval"]
    assert (
        f"pr_auc {first.metrics['pr_auc']:.4f}, base rate {first.metrics['base_rate']:.3f}"
        in metric_gate.message
    )
    assert req.gates[1].passed and "churn.train@1" in req.gates[1].message
    req = c.promote("churn", 2, "Production", reason="better AUC")
    assert req.status == "completed" and req.baseline_version == 1
    details = req.gates[0].details
    assert details["baseline_version"] == 1 and details["improvement"] >= 0.01
    assert re.search(r"pr_auc \d\.\d{4} vs \d\.\d{4}, base rate 0\.\d{3}$", req.gates[0].message)
    assert c.get_model_version("models:/churn/Production").version == 2
    stage_event = c.list_audit_events(action="model_version.stage")[0]
    assert stage_event.after["gates"][0]["status"] == "passed"


def test_a_worse_candidate_is_refused_and_nothing_changes(registered: dict[str, Any]) -> None:
    c = Client()
    c.promote("churn", 2, "Production")
    c.set_promotion_policy("churn", POLICY)
    with pytest.raises(
        GateFailed, match=r"refused: metric_vs_baseline: roc_auc .* < min_delta 0.01"
    ) as info:
        c.promote("churn", 1, "Production")
    details = info.value.details
    assert details["gates"][0]["status"] == "failed"
    assert {v.version: v.stage for v in c.list_model_versions("churn")} == {
        1: "None",
        2: "Production",
    }
    refused = c.list_promotion_requests(status="refused")
    assert len(refused) == 1 and refused[0].request_id == details["request_id"]
    assert c.list_audit_events(action="promotion.refused")[0].object_id == "churn/1"


def test_failed_data_validation_blocks_promotion(
    registered: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    milepost.data.validate(
        registered["train"],
        {"name": "basic", "checks": [{"kind": "between", "column": "age", "min": 60}]},
    )
    Client().set_promotion_policy(
        "churn", {"staging": [{"kind": "data_validation", "suite": "basic"}]}
    )
    with pytest.raises(GateFailed, match=r"churn\.train@1 failed suite 'basic'"):
        Client().promote("churn", 2, "Staging")
    Client().set_promotion_policy(
        "churn", {"staging": [{"kind": "data_validation", "suite": "other"}]}
    )
    with pytest.raises(GateFailed, match="never validated with suite 'other'"):
        Client().promote("churn", 2, "Staging")


def test_no_threshold_and_no_production_is_a_clear_failure(registered: dict[str, Any]) -> None:
    Client().set_promotion_policy(
        "churn",
        {
            "production": [
                {"kind": "metric_vs_baseline", "dataset": "churn.test@1", "target": LABEL}
            ]
        },
    )
    with pytest.raises(GateFailed, match="no Production version to compare with and no threshold"):
        Client().promote("churn", 2, "Production")


def test_approval_flow_with_roles(registered: dict[str, Any], runtime: Runtime) -> None:
    c = Client()
    c.set_promotion_policy("churn", {"production": [{"kind": "approval", "role": "approver"}]})
    req = c.promote("churn", 2, "Production", reason="ship it")
    assert req.status == "pending_approval" and req.gates[0].status == "pending"
    assert "nobody holds it yet" in req.gates[0].message
    assert [r.request_id for r in c.list_promotion_requests()] == [req.request_id]
    assert c.get_model_version("churn", 2).stage == "None"  # waiting changes nothing
    # the requester ("tester") may not approve, even with the role
    runtime.roles.grant("tester", "admin")
    runtime.roles.grant("tester", "approver")
    with pytest.raises(PermissionDenied, match="cannot approve it too"):
        c.approve(req.request_id)
    # someone without the role may not either
    outsider = milepost.configure(
        home=runtime.settings.home, metadata_uri=runtime.db.uri, user="eve"
    )
    with pytest.raises(PermissionDenied, match="needs the 'approver' role"):
        Client(outsider).approve(req.request_id[:12])
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        outsider.roles.grant("eve", "approver")
    milepost.reset()
    admin = milepost.configure(
        home=runtime.settings.home, metadata_uri=runtime.db.uri, user="tester"
    )
    admin.roles.grant("ana", "approver")
    ana = milepost.configure(home=runtime.settings.home, metadata_uri=runtime.db.uri, user="ana")
    done = Client(ana).approve(req.request_id, reason="looks good")
    assert done.status == "completed" and done.decided_by == "ana"
    assert done.gates[0].passed and done.gates[0].message == "approved by ana"
    assert Client(ana).get_model_version("models:/churn/Production").version == 2
    with pytest.raises(Conflict, match="is completed, not awaiting approval"):
        Client(ana).approve(req.request_id)
    actions = [e.action for e in Client(ana).list_audit_events(object_id="churn/2")]
    assert actions == [
        "promotion.approved",
        "model_version.stage",
        "promotion.requested",
        "model_version.register",
    ]


def test_rejection_ends_the_request(registered: dict[str, Any], runtime: Runtime) -> None:
    runtime.roles.grant("bob", "approver")
    c = Client()
    c.set_promotion_policy("churn", {"production": [{"kind": "approval"}]})
    req = c.promote("churn", 2, "Production")
    bob = milepost.configure(home=runtime.settings.home, metadata_uri=runtime.db.uri, user="bob")
    rejected = Client(bob).reject(req.request_id, reason="needs a fairness review")
    assert rejected.status == "rejected" and rejected.gates[0].status == "failed"
    assert Client(bob).get_model_version("churn", 2).stage == "None"
    assert Client(bob).list_promotion_requests() == []


def test_stale_approval_is_refused(registered: dict[str, Any], runtime: Runtime) -> None:
    runtime.roles.grant("bob", "approver")
    c = Client()
    c.set_promotion_policy(
        "churn", {"production": [{"kind": "approval", "allow_self_approval": True}]}
    )
    req = c.promote("churn", 1, "Production")
    c.set_promotion_policy("churn", None)
    c.promote("churn", 2, "Production")  # Production moved meanwhile
    bob = milepost.configure(home=runtime.settings.home, metadata_uri=runtime.db.uri, user="bob")
    with pytest.raises(Conflict, match="changed while this promotion was decided"):
        Client(bob).approve(req.request_id)
    assert Client(bob).list_promotion_requests(status="stale")[0].request_id == req.request_id
    assert Client(bob).get_model_version("models:/churn/Production").version == 2


@pytest.mark.parametrize(
    ("policy", "match"),
    [
        ({"production": [{"kind": "metric_vs_baselin"}]}, "Did you mean 'metric_vs_baseline'"),
        ({"production": [{"kind": "approval", "count": 0}]}, "count"),
        ({"production": [{"kind": "metric_vs_baseline", "target": "y"}]}, "dataset"),
        ({"prod": []}, "Unknown policy section"),
        ({"production": [{"role": "x"}]}, "needs a 'kind'"),
    ],
)
def test_bad_policies_are_refused(policy: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        PromotionPolicy.from_dict(policy)


@pytest.mark.parametrize(
    ("spec", "approver"),
    [
        # "no" is truthy: coerced, the requester could approve their own promotion
        ({"kind": "approval", "count": 1, "allow_self_approval": "no"}, "tester"),
        # coerced, int(0.5) == 0 approvals would be enough; "NaN" is not a count at all
        ({"kind": "approval", "count": 0.5, "allow_self_approval": False}, "ana"),
        ({"kind": "approval", "count": "NaN", "allow_self_approval": False}, "ana"),
    ],
)
def test_an_approval_spec_changed_in_the_database_fails_closed(
    registered: dict[str, Any], runtime: Runtime, spec: dict[str, Any], approver: str
) -> None:
    c = Client()
    c.set_promotion_policy("churn", {"production": [{"kind": "approval"}]})
    req = c.promote("churn", 2, "Production")
    runtime.roles.grant("tester", "admin")
    runtime.roles.grant(approver, "approver")
    with runtime.db.write() as conn:
        conn.execute(
            sa.update(gate_results)
            .where(gate_results.c.request_id == req.request_id)
            .values(details_json=json.dumps({"approvals": [], "spec": spec}))
        )
    other = milepost.configure(
        home=runtime.settings.home, metadata_uri=runtime.db.uri, user=approver
    )
    c = Client(other)
    with pytest.raises(Conflict, match=r"approval gate stored with request .* is invalid"):
        c.approve(req.request_id)
    assert c.get_model_version("churn", 2).stage == "None"
    assert c.reject(req.request_id, reason="tampered").status == "rejected"


def test_policy_round_trips(registered: dict[str, Any]) -> None:
    stored = Client().set_promotion_policy("churn", POLICY)
    assert PromotionPolicy.from_yaml(stored.to_yaml()) == stored
    assert milepost.get_runtime().promotion.get_policy("churn") == stored


def test_unknown_metric_is_refused_when_the_policy_is_set(registered: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match=r"primary: unknown metric 'auc'"):
        Client().set_promotion_policy(
            "churn",
            {
                "production": [
                    {
                        "kind": "metric_vs_baseline",
                        "dataset": "churn.test@1",
                        "target": LABEL,
                        "primary": "auc",
                        "threshold": 0.5,
                    }
                ]
            },
        )
    assert milepost.get_runtime().promotion.get_policy("churn").empty


_METRIC_GATE = {
    "kind": "metric_vs_baseline",
    "dataset": "churn.test@1",
    "target": LABEL,
    "primary": "roc_auc",
}


@pytest.mark.parametrize(
    ("gate", "field"),
    [
        ({**_METRIC_GATE, "min_delta": math.nan}, "min_delta"),
        ({**_METRIC_GATE, "min_delta": "0.01"}, "min_delta"),
        ({**_METRIC_GATE, "threshold": math.inf}, "threshold"),
        ({**_METRIC_GATE, "guards": {"log_loss": math.nan}}, "guards.log_loss"),
        ({"kind": "approval", "count": True}, "count"),
    ],
)
def test_nan_infinity_and_wrong_types_are_refused_when_set_and_nothing_is_stored(
    registered: dict[str, Any], gate: dict[str, Any], field: str
) -> None:
    c = Client()
    c.set_promotion_policy("churn", {"staging": [{"kind": "data_validation"}]})
    with pytest.raises(InvalidInput, match=rf"^production\[0\] \({gate['kind']}\): {field}: "):
        c.set_promotion_policy("churn", {"production": [gate]})
    text = "production:\n  - " + json.dumps(gate).replace("NaN", ".nan").replace("Infinity", ".inf")
    with pytest.raises(InvalidInput, match=rf"{field}: "):
        c.set_promotion_policy("churn", text)
    policy = milepost.get_runtime().promotion.get_policy("churn")
    assert [g.kind for g in policy.staging] == ["data_validation"] and not policy.production


@pytest.mark.parametrize("policy", [5, ["production"], 2.5, b"production: []"])
def test_a_policy_of_the_wrong_type_is_invalid_input(
    registered: dict[str, Any], policy: Any
) -> None:
    with pytest.raises(InvalidInput, match="YAML text or a path"):
        Client().set_promotion_policy("churn", policy)


def test_policy_paths_that_are_a_directory_or_not_utf8(
    registered: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "policy.yaml"
    folder.mkdir()
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("production:\n  - {kind: approval, role: r\u00f4le}\n".encode("latin-1"))
    for source, match in [(folder, "is a directory"), (latin, "not UTF-8")]:
        with pytest.raises(InvalidInput, match=match):
            Client().set_promotion_policy("churn", source)
        with pytest.raises(InvalidInput, match=match):
            Client().set_promotion_policy("churn", str(source))


def test_a_nan_written_straight_into_the_database_fails_closed(
    registered: dict[str, Any],
) -> None:
    """A policy that bypassed set_policy (a direct write) never opens a gate."""
    c = Client()
    c.promote("churn", 2, "Production")  # the good model is the baseline
    bad = {"production": [{**_METRIC_GATE, "min_delta": "NaN-placeholder"}]}
    text = json.dumps(bad).replace('"NaN-placeholder"', "NaN")
    with milepost.get_runtime().db.write() as conn:
        conn.execute(
            sa.update(registered_models)
            .where(registered_models.c.name == "churn")
            .values(policy_json=text)
        )
    with pytest.raises(InvalidInput, match=r"policy of churn .*min_delta.*finite"):
        c.promote("churn", 1, "Production")
    assert c.get_model_version("models:/churn/Production").version == 2
    assert c.get_model_version("models:/churn/1").stage == "None"


STAGING_CHECK = {"staging": [{"kind": "data_validation", "suite": "other"}]}


def test_a_version_entering_production_from_none_passes_stagings_gates_too(
    registered: dict[str, Any],
) -> None:
    """Stages are a path: v2's training data was never validated with the suite Staging
    asks for, so it cannot jump None -> Production past that check."""
    c = Client()
    c.set_promotion_policy(
        "churn", {**STAGING_CHECK, "production": [{"kind": "data_validation", "suite": "basic"}]}
    )
    with pytest.raises(GateFailed, match=r"data_validation \(Staging\): .*never validated"):
        c.promote("churn", 2, "Production")
    with pytest.raises(GateFailed, match="never validated with suite 'other'"):
        c.promote("churn", 2, "Staging")
    assert {v.version: v.stage for v in c.list_model_versions("churn")} == {1: "None", 2: "None"}
    refused = c.list_promotion_requests(status="refused")[-1]
    assert [(g.name, g.status) for g in refused.gates] == [
        ("data_validation (Staging)", "failed"),
        ("data_validation", "passed"),
    ]
    # both sets pass: both are recorded on the request
    milepost.data.validate(
        registered["train"],
        {"name": "other", "checks": [{"kind": "not_null", "column": "customer_id"}]},
    )
    done = c.promote("churn", 2, "Production")
    assert done.status == "completed"
    assert [g.name for g in done.gates] == ["data_validation (Staging)", "data_validation"]
    # from Staging, only Production's gates run (Staging's ran on the way in)
    c.promote("churn", 1, "Staging")
    c.set_promotion_policy("churn", {"staging": [{"kind": "approval"}]})
    assert [g.name for g in c.promote("churn", 1, "Production").gates] == []


def test_a_policy_may_let_production_be_entered_directly(registered: dict[str, Any]) -> None:
    c = Client()
    policy = c.set_promotion_policy(
        "churn", {**STAGING_CHECK, "production": [], "allow_direct_production": True}
    )
    assert policy.allow_direct_production and "allow_direct_production: true" in policy.to_yaml()
    assert milepost.get_runtime().promotion.get_policy("churn") == policy
    assert c.promote("churn", 2, "Production").status == "completed"
    with pytest.raises(GateFailed, match="never validated with suite 'other'"):
        c.promote("churn", 1, "Staging")  # Staging itself keeps its gates


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, [True]])
def test_allow_direct_production_must_be_a_boolean(value: Any) -> None:
    with pytest.raises(InvalidInput, match="allow_direct_production must be true or false"):
        PromotionPolicy.from_dict({"allow_direct_production": value})
    with pytest.raises(InvalidInput, match="Did you mean 'allow_direct_production'"):
        PromotionPolicy.from_dict({"allow_direct_productoin": True})
    with pytest.raises(InvalidInput, match="allow_direct_production must be true or false"):
        PromotionPolicy.from_yaml('allow_direct_production: "yes"')


def test_a_refused_request_never_shows_an_approval_as_pending(registered: dict[str, Any]) -> None:
    c = Client()
    c.promote("churn", 2, "Production")
    c.set_promotion_policy("churn", {"production": [{**_METRIC}, {"kind": "approval"}]})
    with pytest.raises(GateFailed) as info:
        c.promote("churn", 1, "Production")
    shown = [(g["name"], g["status"]) for g in info.value.details["gates"]]  # type: ignore[index]
    assert shown == [("metric_vs_baseline", "failed"), ("approval", "skipped")]
    request = c.get_promotion_request(info.value.details["request_id"])  # type: ignore[index]
    assert request.status == "refused"
    assert request.gates[1].status == "skipped"
    assert request.gates[1].message == "not asked: the request was refused by metric_vs_baseline"
    assert c.list_promotion_requests() == []  # nothing waits for an approver
    assert c.verify_audit().ok


_METRIC = {
    "kind": "metric_vs_baseline",
    "dataset": "churn.test@1",
    "target": LABEL,
    "min_delta": 0.01,
}
