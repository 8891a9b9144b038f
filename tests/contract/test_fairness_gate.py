"""The ``fairness`` gate: a version that fails it reaches Production by no path.

The paths that change a stage: ``promote`` (Staging's gates too on the way from None),
``approve`` of a request, the registry's ungated ``transition``, and a rollout (canary,
blue/green, rolling) on an endpoint that tracks Production, whose request runs the gates
before any traffic. Each is tried with a biased candidate; a fair one passes.
"""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

import milepost
from milepost import Client, Runtime
from milepost.errors import Conflict, GateFailed

#: y: the label; x: biased decisions (a: selection 0.5, b: 0.25); z: fair decisions
_Y = [1] * 20 + [0] * 20
_FAIR = [1] * 16 + [0] * 4 + [1] * 4 + [0] * 16  # TPR 0.8, FPR 0.2 in both groups
_BIASED_B = [1] * 8 + [0] * 12 + [1] * 2 + [0] * 18  # TPR 0.4, FPR 0.1
AUDIT = pd.DataFrame(
    {
        "gender": ["a"] * 40 + ["b"] * 40,
        "x": _FAIR + _BIASED_B,
        "z": _FAIR + _FAIR,
        "y": _Y + _Y,
    }
)
FOUR_FIFTHS = {
    "kind": "fairness",
    "dataset": "audit@1",
    "target": "y",
    "sensitive_features": ["gender"],
    "min_demographic_parity_ratio": 0.8,
    "max_equalized_odds_difference": 0.1,
    "min_group_size": 10,
}


def _log(column: str) -> None:
    """A model version that predicts exactly ``column``."""
    frame = pd.DataFrame({column: [0, 1] * 10})
    model = DecisionTreeClassifier(max_depth=1).fit(frame, frame[column])
    with milepost.start_run(experiment="fairness-gate"):
        milepost.log_model(model, "loans", input_example=frame.head(3))


@pytest.fixture
def loans(runtime: Runtime) -> Client:
    """loans v1 (fair, decides on z), v2 (biased, decides on x), v3 (fair again)."""
    milepost.data.register("audit", AUDIT)
    for column in ("z", "x", "z"):
        _log(column)
    return Client()


def _stages(c: Client) -> dict[int, str]:
    return {v.version: v.stage for v in c.list_model_versions("loans")}


def test_a_biased_version_is_refused_and_the_result_says_why(
    loans: Client, runtime: Runtime
) -> None:
    loans.set_promotion_policy("loans", {"production": [FOUR_FIFTHS]})
    with pytest.raises(GateFailed) as info:
        loans.promote("loans", 2, "Production")
    message = info.value.message
    assert "gender: demographic parity ratio 0.50 < 0.80" in message
    assert "gender: equalized odds difference 0.40 > 0.10" in message
    assert _stages(loans) == {1: "None", 2: "None", 3: "None"}
    request = loans.get_promotion_request(info.value.details["request_id"])
    gate = request.gates[0]
    assert request.status == "refused" and gate.kind == "fairness" and gate.status == "failed"
    # the stored audit behind the result, for a model card to show
    audit = loans.get_fairness_audit(gate.details["audit_id"])
    assert audit.model_uri == "models:/loans/2" and audit.dataset_ref == "audit@1"
    assert gate.details["summary"] == audit.summary
    assert gate.details["summary"]["gender"]["demographic_parity_ratio"] == pytest.approx(0.5)
    assert loans.list_fairness_audits("models:/loans/2")[0].audit_id == audit.audit_id
    # a refused request cannot be approved into Production
    runtime.roles.grant("tester", "approver")
    with pytest.raises(Conflict, match="is refused, not awaiting approval"):
        loans.approve(request.request_id)
    # nor can the registry's ungated stage change move it there
    with pytest.raises(Conflict, match=r"without its gates.*fairness gate") as detour:
        runtime.models.transition("loans", 2, "Production")
    assert "milepost models promote loans 2 production" in (detour.value.hint or "")
    assert _stages(loans) == {1: "None", 2: "None", 3: "None"}
    # a fair version passes the same gate, and the message says by how much
    request = loans.promote("loans", 1, "Production")
    assert request.status == "completed"
    assert request.gates[0].message == (
        "gender: demographic parity ratio 1.00 >= 0.80; "
        "gender: equalized odds difference 0.00 <= 0.10"
    )
    assert loans.verify_audit().ok


def test_staging_gates_guard_the_way_from_none_and_by_hand(loans: Client, runtime: Runtime) -> None:
    loans.set_promotion_policy("loans", {"staging": [FOUR_FIFTHS]})
    with pytest.raises(GateFailed, match=r"fairness \(Staging\): gender: demographic parity"):
        loans.promote("loans", 2, "Production")
    for stage in ("Staging", "Production"):
        with pytest.raises(Conflict, match="without its gates"):
            runtime.models.transition("loans", 2, stage)
    assert _stages(loans)[2] == "None"
    # Archived is no way in; a policy without gates leaves the registry's calls alone
    runtime.models.transition("loans", 2, "Archived")
    loans.set_promotion_policy("loans", {"staging": []})
    runtime.models.transition("loans", 3, "Staging")
    assert _stages(loans) == {1: "None", 2: "Archived", 3: "Staging"}


def test_a_stored_policy_that_cannot_be_read_guards_the_registry(
    loans: Client, runtime: Runtime
) -> None:
    import sqlalchemy as sa

    from milepost.stores.schema import registered_models

    with runtime.db.write() as conn:
        conn.execute(
            sa.update(registered_models)
            .where(registered_models.c.name == "loans")
            .values(policy_json="{not json")
        )
    with pytest.raises(Conflict, match="its stored policy cannot be read"):
        runtime.models.transition("loans", 2, "Production")


@pytest.mark.parametrize("how", ["canary", "blue_green", "rolling"])
def test_a_rollout_on_a_tracking_endpoint_runs_the_gate_before_any_traffic(
    loans: Client, runtime: Runtime, how: str
) -> None:
    loans.promote("loans", 1, "Production")
    runtime.serving.create("loans-ep", "loans")
    loans.set_promotion_policy("loans", {"production": [FOUR_FIFTHS]})
    before = runtime.serving.get("loans-ep")[0]
    with pytest.raises(GateFailed, match=r"gender: demographic parity ratio 0\.50 < 0\.80"):
        getattr(runtime.serving, how)("loans-ep", 2)
    after = runtime.serving.get("loans-ep")[0]
    assert [v.name for v in after.variants] == [v.name for v in before.variants]
    assert after.rollout == before.rollout
    assert _stages(loans) == {1: "Production", 2: "None", 3: "None"}
    # the fair version is let through to the rollout
    getattr(runtime.serving, how)("loans-ep", 3)
    assert "loans-v3" in [v.name for v in runtime.serving.get("loans-ep")[0].variants]
    assert loans.verify_audit().ok


def test_an_unwired_auditor_fails_closed(loans: Client, runtime: Runtime) -> None:
    from milepost.promotion import Fairness, GateContext

    gate = Fairness(**FOUR_FIFTHS)
    candidate = runtime.models.get_version("loans", 3)
    ctx = GateContext(
        "loans", candidate, "Production", None, "tester", runtime.evaluation.evaluate,
        runtime.data, runtime.roles,
    )  # fmt: skip
    result = gate.check(ctx)
    assert result.status == "error" and "fails closed" in result.message


def test_a_gate_added_after_a_request_was_decided_still_guards_production(
    loans: Client, runtime: Runtime
) -> None:
    runtime.roles.grant("tester", "admin")
    runtime.roles.grant("ana", "approver")
    loans.set_promotion_policy("loans", {"production": [{"kind": "approval"}]})
    waiting = loans.promote("loans", 2, "Production")
    assert waiting.status == "pending_approval"
    loans.set_promotion_policy("loans", {"production": [{"kind": "approval"}, FOUR_FIFTHS]})
    ana = milepost.configure(
        home=runtime.settings.home, metadata_uri=runtime.settings.metadata_uri, user="ana"
    )
    with pytest.raises(
        Conflict, match=r"is stale: the promotion policy now also requires fairness"
    ):
        Client(ana).approve(waiting.request_id)
    assert Client(ana).get_promotion_request(waiting.request_id).status == "stale"
    assert _stages(Client(ana)) == {1: "None", 2: "None", 3: "None"}
    with pytest.raises(GateFailed, match=r"demographic parity ratio 0\.50 < 0\.80"):
        Client(ana).promote("loans", 2, "Production")
    assert Client(ana).verify_audit().ok


def test_a_rollout_does_not_carry_a_request_decided_before_a_gate_was_added(
    loans: Client, runtime: Runtime
) -> None:
    loans.promote("loans", 1, "Production")
    runtime.serving.create("loans-ep", "loans")
    runtime.roles.grant("tester", "admin")
    runtime.roles.grant("ana", "approver")
    loans.set_promotion_policy("loans", {"production": [{"kind": "approval"}]})
    request = loans.promote("loans", 2, "Production")
    ana = milepost.configure(
        home=runtime.settings.home, metadata_uri=runtime.settings.metadata_uri, user="ana"
    )
    assert Client(ana).approve(request.request_id).status == "awaiting_rollout"
    tester = milepost.configure(
        home=runtime.settings.home, metadata_uri=runtime.settings.metadata_uri, user="tester"
    )
    Client(tester).set_promotion_policy(
        "loans", {"production": [{"kind": "approval"}, FOUR_FIFTHS]}
    )
    with pytest.raises(GateFailed, match=r"demographic parity ratio 0\.50 < 0\.80"):
        tester.serving.canary("loans-ep", 2)
    assert Client(tester).get_promotion_request(request.request_id).status == "stale"
    assert _stages(Client(tester)) == {1: "Production", 2: "None", 3: "None"}
    assert "loans-v2" not in [v.name for v in tester.serving.get("loans-ep")[0].variants]
    assert Client(tester).verify_audit().ok
