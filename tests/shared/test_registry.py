"""The model registry through ``milepost.Client``, embedded and remote: the same calls
give the same records (compared with what the embedded services read directly)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

import milepost
from milepost.errors import InvalidInput, NotFound, PermissionDenied
from milepost.models import ModelVersion, RegisteredModel
from tests.shared._registry import FRAME, register_model, remote_runtime


@pytest.fixture
def model(platform: dict[str, Any], unique: str) -> str:
    register_model(platform["rt"], unique)
    return unique


def test_models_and_versions_read_the_same(
    client: milepost.Client, platform: dict[str, Any], model: str
) -> None:
    rt = platform["rt"]
    got = client.get_model(model)
    assert isinstance(got, RegisteredModel)
    assert got == rt.models.get_model(model)
    assert got.latest_version == 2 and got.production_version is None
    assert model in [m.name for m in client.list_models()]
    versions = client.list_model_versions(model)
    assert [v.version for v in versions] == [1, 2]
    # records compare by their JSON: the database row id stays on the server
    assert [v.to_dict() for v in versions] == [v.to_dict() for v in rt.models.versions(model)]
    v1 = client.get_model_version(model, 1)
    assert isinstance(v1, ModelVersion)
    assert v1.to_dict() == rt.models.get_version(model, 1).to_dict()
    assert v1.signature is not None and [c.name for c in v1.signature.inputs] == ["age", "spend"]
    assert v1.metrics == {"roc_auc": 0.7}
    assert client.get_model_version(f"models:/{model}/latest").version == 2
    assert client.get_model_version(f"models:/{model}/2").to_dict() == (
        rt.models.get_version(model, 2).to_dict()
    )


def test_aliases(client: milepost.Client, platform: dict[str, Any], model: str) -> None:
    client.set_alias(model, "champion", 1)
    assert client.get_model_version(f"models:/{model}@champion").version == 1
    assert client.get_model(model).aliases == {"champion": 1}
    client.set_alias(model, "champion", 2)
    assert client.get_model_version(f"models:/{model}@champion").aliases == ["champion"]
    client.delete_alias(model, "champion")
    with pytest.raises(NotFound):
        client.get_model_version(f"models:/{model}@champion")
    with pytest.raises(InvalidInput, match="reserved"):
        client.set_alias(model, "production", 1)


def test_stage_history_production_at_and_archive(
    client: milepost.Client, platform: dict[str, Any], model: str
) -> None:
    rt = platform["rt"]
    rt.promotion.promote(model, 1, "production", reason="first")
    assert client.get_model_version(f"models:/{model}/Production").version == 1
    history = client.get_model_history(model)
    assert history == rt.models.history(model)
    assert [(e.from_stage, e.to_stage, e.actor) for e in history] == [
        ("None", "Production", "alice")
    ]
    now = int(time.time() * 1000)
    assert client.production_at(model, now) == 1
    assert client.production_at(model, history[0].at - 1) is None
    client.archive_model_version(model, 1, reason="retired")
    assert client.get_model_version(model, 1).stage == "Archived"
    assert client.get_model_history(model)[-1].reason == "retired"
    assert client.get_model(model).production_version is None


def test_model_card_and_fields(
    client: milepost.Client, platform: dict[str, Any], model: str
) -> None:
    written = client.set_model_card_field(model, "intended_use", "Churn triage.")
    assert (written.field, written.text, written.version, written.updated_by) == (
        "intended_use",
        "Churn triage.",
        0,
        "alice",
    )
    client.set_model_card_fields(model, {"limitations": "Tiny data."}, version=2)
    card = client.model_card(model, 2)
    embedded = platform["rt"].cards.card(model, 2).to_dict()
    assert {**card.to_dict(), "generated_at": 0} == {**embedded, "generated_at": 0}
    assert card.text("intended_use") == "Churn triage." and card.text("limitations") == "Tiny data."
    assert "intended_use" not in card.missing
    client.clear_model_card_field(model, "limitations", version=2)
    assert client.model_card(model, 2).text("limitations") is None
    with pytest.raises(InvalidInput, match="intended_use"):
        client.set_model_card_field(model, "intended_uses", "typo")


def test_errors_are_the_same(client: milepost.Client, unique: str) -> None:
    with pytest.raises(NotFound):
        client.get_model(unique)
    with pytest.raises(NotFound):
        client.get_model_version(unique, 1)
    with pytest.raises(InvalidInput):
        client.get_model("a/b")
    with pytest.raises(InvalidInput):
        client.get_model_version("models:/x/notastage")


def test_remote_evaluation_needs_a_registered_dataset(platform: dict[str, Any]) -> None:
    remote = remote_runtime(platform, platform["token"])
    try:
        with pytest.raises(InvalidInput, match="registered dataset version"):
            remote.evaluation.evaluate("models:/m/1", FRAME, target="churned")
        with pytest.raises(InvalidInput, match="trusted=True"):
            remote.evaluation.evaluate("models:/m/1", "d@1", target="churned", trusted=True)
    finally:
        remote.close()


def test_evaluate_and_fairness_on_a_dataset_version(
    client: milepost.Client, runtime: Any, platform: dict[str, Any], model: str
) -> None:
    rt = platform["rt"]
    test = rt.data.register(f"{model}_test", FRAME.assign(group=["a", "b"] * 4))
    result = runtime.evaluation.evaluate(
        f"models:/{model}/2", test.ref, target="churned", slices=["group"]
    )
    assert (result.dataset_ref, result.num_rows, result.task) == (test.ref, 8, "classification")
    assert set(result.slices["group"]) == {"a", "b"}
    stored = runtime.evaluation.for_version(f"models:/{model}/2")
    assert [e.to_dict() for e in stored] == [result.to_dict()]
    audit = client.audit_fairness(
        f"models:/{model}/2",
        test.ref,
        target="churned",
        sensitive_features=["group"],
        min_group_size=2,
    )
    assert audit.sensitive_features == ["group"] and audit.created_by == "alice"
    assert client.get_fairness_audit(audit.audit_id[:8]).to_dict() == audit.to_dict()
    listed = client.list_fairness_audits(f"models:/{model}/2")
    assert [a.to_dict() for a in listed] == [
        a.to_dict() for a in rt.evaluation.fairness_for_version(f"models:/{model}/2")
    ]
    with pytest.raises(InvalidInput, match="no target column"):
        runtime.evaluation.evaluate(f"models:/{model}/2", test.ref, target="label")


def test_log_model(runtime: Any, platform: dict[str, Any], unique: str) -> None:
    """Remotely the model is saved on the client, uploaded, rebuilt with the server's
    trust and registered as the caller: the same version as embedded."""
    from sklearn.linear_model import LogisticRegression

    rt = platform["rt"]
    x, y = FRAME[["age", "spend"]], FRAME["churned"]
    model = LogisticRegression().fit(x, y)
    run = rt.tracking.start_run(experiment=unique)
    rt.tracking.log_metrics(run.run_id, {"roc_auc": 0.8})
    mv = runtime.models.log_model(
        run.run_id,
        model,
        name=unique,
        input_example=x.head(3),
        training_data=x,
        description="remote or not",
        tags={"team": "growth"},
    )
    stored = rt.models.get_version(unique, 1)
    assert mv.to_dict() == stored.to_dict()
    assert (mv.version, mv.flavor, mv.author, mv.run_id) == (1, "sklearn", "alice", run.run_id)
    assert mv.metrics == {"roc_auc": 0.8} and mv.has_profile and mv.tags == {"team": "growth"}
    assert [c.name for c in mv.signature.inputs] == ["age", "spend"]  # type: ignore[union-attr]
    assert mv.input_example == json.loads(x.head(3).to_json(orient="records"))
    loaded = rt.models.load(mv.uri)
    assert list(loaded.predict(x)) == list(model.predict(x))
    here = runtime.models.load(f"models:/{unique}/latest")  # remotely: downloaded, loaded here
    assert here.version.to_dict() == mv.to_dict()
    assert list(here.predict(x)) == list(model.predict(x))
    profile = runtime.models.get_profile(unique, 1)
    assert profile is not None
    assert profile.to_dict() == rt.models.get_profile(unique, 1).to_dict()


def test_remote_model_upload_refusals(platform: dict[str, Any], unique: str) -> None:
    from sklearn.preprocessing import FunctionTransformer

    remote = remote_runtime(platform, platform["token"])
    rt = platform["rt"]
    run = rt.tracking.start_run(experiment=unique)
    try:
        with pytest.raises(PermissionDenied, match="never unpickles"):
            remote.models.log_model(run.run_id, _Predictor(), name=unique)
        with pytest.raises(InvalidInput, match="not on the built-in allow-list"):
            remote.models.log_model(
                run.run_id, FunctionTransformer(_double), name=unique, flavor="sklearn"
            )
        with pytest.raises(NotFound):
            platform["rt"].models.get_model(unique)
    finally:
        remote.close()


class _Predictor:
    def predict(self, frame: Any) -> Any:
        return frame


def _double(x: Any) -> Any:
    return x * 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\x00\x01", "ended inside its header length"),
        ((1 << 40).to_bytes(8, "big"), "header is"),
        (len(b"[1]").to_bytes(8, "big") + b"[1]", "JSON object"),
        (len(b"{x").to_bytes(8, "big") + b"{x", "not JSON"),
        (b"", "ended inside"),
    ],
)
def test_model_upload_garbage_is_a_400(
    platform: dict[str, Any], unique: str, body: bytes, problem: str
) -> None:
    answer = httpx.post(
        f"{platform['url']}/api/v1/models/{unique}/versions",
        content=body,
        headers={"Authorization": f"Bearer {platform['token']}"},
    )
    assert answer.status_code == 400, answer.text
    assert problem in answer.json()["message"]


def test_model_upload_of_a_broken_file_is_a_400(platform: dict[str, Any], unique: str) -> None:
    run = platform["rt"].tracking.start_run(experiment=unique)
    for flavor in ("sklearn", "onnx"):
        header = json.dumps({"run_id": run.run_id, "flavor": flavor, "model_bytes": 4}).encode()
        answer = httpx.post(
            f"{platform['url']}/api/v1/models/{unique}/versions",
            content=len(header).to_bytes(8, "big") + header + b"junk",
            headers={"Authorization": f"Bearer {platform['token']}"},
        )
        assert answer.status_code == 400, answer.text


def test_a_project_token_logs_models_of_its_project_only(
    platform: dict[str, Any], unique: str
) -> None:
    from sklearn.linear_model import LogisticRegression

    rt = platform["rt"]
    _, secret = rt.tokens.create(f"{unique}-ci", "member", user="ci", project=unique)
    mine = rt.tracking.start_run(experiment=unique)
    other = rt.tracking.start_run(experiment=f"{unique}-other")
    model = LogisticRegression().fit(FRAME[["age", "spend"]], FRAME["churned"])
    remote = remote_runtime(platform, secret)
    try:
        with pytest.raises(PermissionDenied, match=unique):
            remote.models.log_model(other.run_id, model, name=unique)
        with pytest.raises(PermissionDenied, match=unique):
            remote.data.inputs_of_run(other.run_id)
        assert remote.models.log_model(mine.run_id, model, name=unique).author == "ci"
    finally:
        remote.close()


def test_load_through_the_onnx_twin(runtime: Any, platform: dict[str, Any], unique: str) -> None:
    from sklearn.linear_model import LogisticRegression

    rt = platform["rt"]
    x, y = FRAME[["age", "spend"]], FRAME["churned"]
    model = LogisticRegression().fit(x, y)
    run = rt.tracking.start_run(experiment=unique)
    mv = runtime.models.log_model(run.run_id, model, name=unique, input_example=x, onnx=True)
    assert mv.has_onnx
    loaded = runtime.models.load(mv.uri, prefer_onnx=True)
    assert loaded.uses_onnx
    assert list(loaded.predict(x)) == list(model.predict(x))
    assert type(loaded.native).__name__ == "LogisticRegression"  # rebuilt on first use
