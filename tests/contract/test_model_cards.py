"""Model cards on every metadata backend: what the store knows about a version, the
sections people write (per model, overridden per version, audited), the renderers and
the CycloneDX ML-BOM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.cards import CARD_FIELDS, render_card, validate_bom, write_card
from milepost.demo.data import LABEL
from milepost.errors import GateFailed, InvalidInput, MilepostError, NotFound
from milepost.stores.schema import model_card_fields
from tests.contract.conftest import FEATURES

POLICY = """
production:
  - {kind: metric_vs_baseline, dataset: churn.test@1, target: churned, primary: roc_auc,
     min_delta: 0.01, threshold: 0.5}
"""


@pytest.fixture
def history(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> dict[str, Any]:
    """churn v1 (weak) and v2 (good) trained on churn.train@1 and evaluated on churn.test@1
    with slices; v2 promoted to Production through a gate, v1 refused by it; v2 deployed."""
    train = milepost.data.register(
        "churn.train", churn_frame.iloc[:2000], description="customers of 2025"
    )
    test = milepost.data.register("churn.test", churn_frame.iloc[2000:])
    for key in ("weak", "good"):
        with milepost.start_run(experiment="cards"):
            milepost.log_input(train, role="train")
            milepost.log_metric("train_auc", 0.9 if key == "good" else 0.5)
            milepost.log_model(
                churn_models[key], "churn", input_example=churn_frame[FEATURES].head(5)
            )
    evaluation = milepost.evaluate(
        "models:/churn/2", "churn.test@1", target=LABEL, slices=["gender"]
    )
    c = Client()
    c.set_promotion_policy("churn", POLICY)
    accepted = c.promote("churn", 2, "Production", reason="best AUC")
    with pytest.raises(GateFailed) as refused:
        c.promote("churn", 1, "Production", reason="try the weak one")
    runtime.serving.create("churn-ep", "churn", version=2)
    return {
        "train": train,
        "test": test,
        "evaluation": evaluation,
        "accepted": accepted,
        "refused": refused.value.details["request_id"],
    }


def test_the_card_holds_what_the_store_knows(runtime: Runtime, history: dict[str, Any]) -> None:
    card = runtime.cards.card("churn", 2)
    mv = runtime.models.get_version("churn", 2)
    assert (card.name, card.version, card.stage, card.flavor) == (
        "churn",
        2,
        "Production",
        "sklearn",
    )
    assert card.author == "tester" and card.run_id == mv.run_id and card.files == mv.files
    assert card.signature is not None
    assert [c["name"] for c in card.signature["inputs"]] == FEATURES
    assert card.environment is not None and card.environment["env_hash"] == mv.env_hash
    assert card.metrics["train_auc"] == 0.9
    # training data: the dataset version with its profile
    (train,) = card.training_data
    assert (train.ref, train.role, train.num_rows) == ("churn.train@1", "train", 2000)
    assert train.content_hash == history["train"].content_hash
    assert train.description == "customers of 2025"
    age = next(c for c in train.columns if c["name"] == "age")
    expected = history["train"].profile["age"]
    assert age["mean"] == expected["mean"] and age["nulls"] == expected["nulls"]
    assert [c["name"] for c in train.columns] == history["train"].columns
    # evaluation data and metrics, overall and per slice, exactly as stored
    (test,) = card.evaluation_data
    assert (test.ref, test.role, test.num_rows) == ("churn.test@1", "evaluation", 1000)
    mine = next(e for e in card.evaluations if e.eval_id == history["evaluation"].eval_id)
    assert mine.metrics == history["evaluation"].metrics
    assert mine.slices["gender"] == history["evaluation"].slices["gender"]
    # the gates' evaluations are stored too (v2 as candidate, then as v1's baseline)
    ids = [e.eval_id for e in card.evaluations]
    assert history["accepted"].gates[0].details["candidate_eval"] in ids and len(ids) == 3
    assert [e.created_at for e in card.evaluations] == sorted(
        (e.created_at for e in card.evaluations), reverse=True
    )
    # the promotion and its gate
    (request,) = card.promotions
    assert request.request_id == history["accepted"].request_id
    assert request.status == "completed" and request.gates[0].passed
    assert card.failed_gates == []
    # stage history and the deployment
    assert [(e.from_stage, e.to_stage) for e in card.stage_history] == [("None", "Production")]
    (deployment,) = card.deployments
    assert deployment.endpoint == "churn-ep" and deployment.serving
    assert deployment.roles == ["primary"]
    assert [e["kind"] for e in deployment.events] == ["create"]
    # nothing written yet: every section is flagged, none invented
    assert card.missing == list(CARD_FIELDS) and card.fields == {}
    data = card.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["uri"] == "models:/churn/2"
    assert data["fill_commands"]["intended_use"] == (
        'milepost models card-set churn intended_use "..."'
    )


def test_a_refused_version_shows_the_failed_gate_and_why(
    runtime: Runtime, history: dict[str, Any]
) -> None:
    card = runtime.cards.card("churn", 1)
    assert card.stage == "None" and card.deployments == [] and card.stage_history == []
    ((request, gate),) = card.failed_gates
    assert request.request_id == history["refused"] and request.status == "refused"
    assert gate.kind == "metric_vs_baseline" and gate.status == "failed"
    assert "min_delta 0.01" in gate.message
    text = render_card(card, "markdown")
    assert "**Failed gates:**" in text and gate.message in text


def test_written_sections_per_model_overridden_per_version_and_audited(
    runtime: Runtime, history: dict[str, Any]
) -> None:
    cards = runtime.cards
    cards.set_field("churn", "intended_use", "Rank customers by churn risk.")
    cards.set_fields(
        "churn",
        {"limitations": "Trained on 2025 customers only.", "contact": "ml@example.com"},
        reason="first card",
    )
    cards.set_field("churn", "intended_use", "Rank v2's customers.", version=2)
    v1, v2 = cards.card("churn", 1), cards.card("churn", 2)
    assert v1.text("intended_use") == "Rank customers by churn risk."
    assert v2.text("intended_use") == "Rank v2's customers."
    assert v2.fields["intended_use"].scope == "version 2"
    assert v2.fields["contact"].scope == "model" and v2.fields["contact"].updated_by == "tester"
    assert v2.text("limitations") == "Trained on 2025 customers only."
    assert "intended_use" not in v2.missing and "license" in v2.missing
    assert len(v2.missing) == len(CARD_FIELDS) - 3
    # the same text again changes nothing and records nothing
    cards.set_field("churn", "contact", "ml@example.com")
    events = Client().list_audit_events(action="model_card.update")
    assert len(events) == 4
    assert {e.object_type for e in events} == {"model"} and {e.object_id for e in events} == {
        "churn"
    }
    newest = events[0]
    assert newest.before == {
        "field": "intended_use",
        "version": 0,
        "text": "Rank customers by churn risk.",
    } or newest.after == {"field": "intended_use", "version": 2, "text": "Rank v2's customers."}
    override = next(e for e in events if e.after.get("version") == 2)
    assert override.before is None and override.after["text"] == "Rank v2's customers."
    assert next(e for e in events if e.after["field"] == "limitations").reason == "first card"
    # clearing the version's override falls back to the model's text
    cards.clear_field("churn", "intended_use", version=2)
    assert cards.card("churn", 2).text("intended_use") == "Rank customers by churn risk."
    cleared = Client().list_audit_events(action="model_card.update")[0]
    assert cleared.before["text"] == "Rank v2's customers." and cleared.after["text"] is None
    cards.clear_field("churn", "intended_use", version=2)  # nothing left to clear
    assert len(Client().list_audit_events(action="model_card.update")) == 5
    assert Client().verify_audit().ok


def test_bad_sections_are_refused_and_nothing_is_written(
    runtime: Runtime, history: dict[str, Any], tmp_path: Path
) -> None:
    cards = runtime.cards
    with pytest.raises(InvalidInput, match=r"no field 'intended_usage'.*'intended_use'"):
        cards.set_field("churn", "intended_usage", "x")
    with pytest.raises(InvalidInput, match="is empty"):
        cards.set_field("churn", "license", "   ")
    with pytest.raises(InvalidInput, match="no field 'lisence'"):  # nothing half-written
        cards.set_fields("churn", {"license": "MIT", "lisence": "MIT"})
    assert cards.fields("churn") == {}
    with pytest.raises(NotFound, match="no version 9"):
        cards.set_field("churn", "license", "MIT", version=9)
    with pytest.raises(NotFound, match=r"'chrun' does not exist.*'churn'"):
        cards.set_field("chrun", "license", "MIT")
    with pytest.raises(NotFound):
        cards.card("churn", 9)
    assert Client().list_audit_events(action="model_card.update") == []
    # several sections from a YAML file
    good = tmp_path / "card.yaml"
    good.write_text("license: Apache-2.0\nfactors: |\n  gender\n  age band\n")
    written = cards.set_fields_from_file("churn", good, version=1)
    assert {w.field for w in written} == {"license", "factors"}
    assert cards.card("churn", 1).text("factors") == "gender\nage band\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("contacts: me\n")
    with pytest.raises(InvalidInput, match=r"no field 'contacts'.*'contact'"):
        cards.set_fields_from_file("churn", bad)


def test_renderers_show_every_section(
    runtime: Runtime, history: dict[str, Any], tmp_path: Path
) -> None:
    runtime.cards.set_field("churn", "intended_use", "Rank | customers <b>by</b> risk.")
    card = runtime.cards.card("churn", 2)
    md = render_card(card, "markdown")
    for heading in (
        "# Model card: churn v2",
        "## Model details",
        "## Intended use",
        "## Training data",
        "## Evaluation data",
        "## Metrics",
        "## Fairness",
        "## Gates",
        "## Lineage",
        "## Stage history",
        "## Deployments",
    ):
        assert heading in md, heading
    assert "Rank | customers <b>by</b> risk." in md
    assert "**MISSING**: the license the model may be used under" in md
    assert 'milepost models card-set churn license "..."' in md
    assert f"{len(CARD_FIELDS) - 1} of {len(CARD_FIELDS)} written sections are missing" in md
    roc = history["evaluation"].metrics["roc_auc"]
    assert f"| roc_auc | {roc:.4g} |" in md
    assert "| female |" in md and "### churn.train@1 (train)" in md
    assert "### Endpoint churn-ep (serving now)" in md
    html = render_card(card, "html")
    assert "&lt;b&gt;by&lt;/b&gt;" in html and "<b>by</b>" not in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    data = json.loads(render_card(card, "json"))
    assert data["name"] == "churn" and data["missing"] == card.missing
    out = write_card(card, tmp_path / "card.cdx.json")
    assert json.loads(out.read_text())["specVersion"] == "1.6"
    with pytest.raises(InvalidInput, match="Cannot tell the card format"):
        write_card(card, tmp_path / "card.txt")
    with pytest.raises(InvalidInput, match="renders as markdown, html, json, cyclonedx"):
        render_card(card, "pdf")


def test_the_cyclonedx_bom_validates_and_a_broken_one_does_not(
    runtime: Runtime, history: dict[str, Any]
) -> None:
    runtime.cards.set_fields(
        "churn",
        {
            "intended_use": "Rank customers by churn risk.",
            "limitations": "2025 only.",
            "ethical_considerations": "Gender is a sensitive attribute.",
            "license": "Apache-2.0",
            "out_of_scope_use": "Credit decisions.",
        },
    )
    card = runtime.cards.card("churn", 2)
    bom = json.loads(render_card(card, "cyclonedx"))
    validate_bom(bom)  # the export validated it already; again, from the text
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model" and model["bom-ref"] == "model:churn/2"
    main_digest = card.files["model.skops"]
    assert model["hashes"] == [{"alg": "SHA-256", "content": main_digest}]
    assert {f["name"] for f in model["components"]} == set(card.files)
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["milepost:stage"] == "Production" and props["milepost:run_id"] == card.run_id
    assert model["licenses"] == [{"license": {"name": "Apache-2.0"}}]
    data = {c["bom-ref"]: c for c in bom["components"]}
    assert set(data) == {"data:churn.train@1", "data:churn.test@1"}
    train = data["data:churn.train@1"]
    assert (
        train["type"] == "data"
        and train["hashes"][0]["content"] == card.training_data[0].content_hash
    )
    assert train["data"][0]["type"] == "dataset"
    assert {"ref": "model:churn/2", "dependsOn": ["data:churn.train@1"]} in bom["dependencies"]
    mc = model["modelCard"]
    assert mc["modelParameters"]["datasets"] == [
        {"ref": "data:churn.train@1"},
        {"ref": "data:churn.test@1"},
    ]
    assert mc["modelParameters"]["task"] == "classification"
    assert len(mc["modelParameters"]["inputs"]) == len(FEATURES)
    metrics = mc["quantitativeAnalysis"]["performanceMetrics"]
    overall = {m["type"]: m["value"] for m in metrics if "slice" not in m}
    newest = card.evaluations[0]
    assert float(overall["roc_auc"]) == pytest.approx(newest.metrics["roc_auc"], rel=1e-5)
    slices = {m["slice"] for m in metrics if "slice" in m}
    assert {f"gender={g}" for g in history["evaluation"].slices["gender"]} <= slices
    considerations = mc["considerations"]
    assert considerations["useCases"] == ["Rank customers by churn risk."]
    assert considerations["technicalLimitations"] == ["2025 only."]
    assert considerations["ethicalConsiderations"] == [{"name": "Gender is a sensitive attribute."}]
    card_props = {p["name"]: p["value"] for p in mc["properties"]}
    assert card_props["milepost:card:out_of_scope_use"] == "Credit decisions."
    assert "contact" in card_props["milepost:card:missing"]
    # a broken BOM is refused with the schema's reason
    broken = json.loads(json.dumps(bom))
    broken["metadata"]["component"]["modelCard"]["modelParameters"]["approach"] = {
        "type": "guesswork"
    }
    with pytest.raises(MilepostError, match=r"does not validate.*guesswork"):
        validate_bom(broken)
    del broken["metadata"]["component"]["modelCard"]["modelParameters"]["approach"]
    broken["metadata"]["component"]["modelCard"]["colour"] = "blue"
    with pytest.raises(MilepostError, match="colour"):
        validate_bom(broken)


def test_fairness_audits_and_a_failed_fairness_gate_show_why(
    runtime: Runtime, history: dict[str, Any]
) -> None:
    milepost.data.register("churn.audit", history["test"].to_pandas().iloc[:600])
    audit = milepost.audit_fairness(
        "models:/churn/2", "churn.audit@1", target=LABEL, sensitive_features=["gender"]
    )
    Client().set_promotion_policy(
        "churn",
        {
            "staging": [
                {
                    "kind": "fairness",
                    "dataset": "churn.test@1",
                    "target": LABEL,
                    "sensitive_features": ["gender"],
                    "min_demographic_parity_ratio": 0.99,
                }
            ]
        },
    )
    with pytest.raises(GateFailed, match="gender: demographic parity ratio"):
        Client().promote("churn", 1, "Staging")
    card = runtime.cards.card("churn", 1)
    ((request, gate),) = [(r, g) for r, g in card.failed_gates if g.kind == "fairness"]
    assert request.target_stage == "Staging" and gate.message.startswith("gender: demographic")
    # the gate's audit is stored with the version: the card shows its groups
    (stored,) = card.fairness
    assert stored.audit_id == gate.details["audit_id"]
    assert {g["group"] for g in stored.groups} == {"female", "male", "nonbinary"}
    md = render_card(card, "markdown")
    assert "| gender | female |" in md and gate.message in md
    bom = json.loads(render_card(card, "cyclonedx"))
    assessments = bom["metadata"]["component"]["modelCard"]["considerations"]["fairnessAssessments"]
    refused = [a for a in assessments if "mitigationStrategy" in a]
    assert refused[0]["groupAtRisk"] == "gender" and refused[0]["harms"] == gate.message
    assert request.request_id[:12] in refused[0]["mitigationStrategy"]
    # v2's card shows the audit run by hand, with the numbers as stored
    v2 = runtime.cards.card("churn", 2)
    (mine,) = v2.fairness
    assert mine.audit_id == audit.audit_id and mine.summary == audit.summary
    # the audit's data is evaluation data too
    assert [(d.ref, d.role, d.num_rows) for d in v2.evaluation_data] == [
        ("churn.test@1", "evaluation", 1000),
        ("churn.audit@1", "fairness audit", 600),
    ]


def test_the_card_carries_the_lineage_graph(runtime: Runtime, history: dict[str, Any]) -> None:
    card = runtime.cards.card("churn", 2)
    graph = card.lineage
    assert graph is not None and graph.root == "model_version:churn/2"
    up = {n.key for n in graph.upstream()}
    down = {n.key for n in graph.downstream()}
    assert "dataset_version:churn.train@1" in up and f"run:{card.run_id}" in up
    assert "endpoint:churn-ep" in down
    assert "lineage" not in card.notes
    md = render_card(card, "markdown")
    assert "**Upstream** (what it was made from):" in md and "`churn.train@1`" in md
    html = render_card(card, "html")
    lineage = html[html.index('<section id="lineage"') :]
    assert "<svg" in lineage[: lineage.index("</section>")]


def test_audit_verify_names_a_section_changed_behind_milepost(
    runtime: Runtime, history: dict[str, Any]
) -> None:
    runtime.cards.set_field("churn", "license", "Apache-2.0")
    runtime.cards.set_field("churn", "contact", "ml@example.com", version=2)
    assert Client().verify_audit().ok
    with runtime.db.write() as conn:
        conn.execute(
            sa.update(model_card_fields)
            .where(model_card_fields.c.field == "license")
            .values(text="Proprietary")
        )
        conn.execute(sa.delete(model_card_fields).where(model_card_fields.c.field == "contact"))
        model_id = conn.execute(sa.select(model_card_fields.c.model_id)).scalar_one()
        conn.execute(
            sa.insert(model_card_fields).values(
                model_id=model_id,
                version=0,
                field="limitations",
                text="none",
                updated_by="mallory",
                updated_at=1,
            )
        )
    report = Client().verify_audit()
    messages = sorted(p.message for p in report.problems if p.kind == "state")
    assert not report.ok
    assert any(m.startswith("card section license of churn differs from") for m in messages)
    assert any(m.startswith("card section contact of churn v2 was written") for m in messages)
    assert "card section limitations of churn exists but no event wrote it." in messages


def test_deployment_history_follows_a_canary_that_was_rolled_back(
    runtime: Runtime, history: dict[str, Any]
) -> None:
    runtime.serving.create("pinned", "churn", version=2)
    runtime.serving.canary("pinned", 1)
    runtime.serving.rollback("pinned", reason="canary error rate")
    v1 = runtime.cards.card("churn", 1)
    (deployment,) = v1.deployments
    assert deployment.endpoint == "pinned" and not deployment.serving
    assert deployment.roles == ["canary"]
    kinds = [(e["kind"], e["role"]) for e in deployment.events]
    assert kinds[0] == ("canary.start", "canary") and kinds[-1] == ("rollback", None)
    assert deployment.events[0]["weight"] > 0
    assert deployment.events[-1]["reason"] == "canary error rate"
    v2 = runtime.cards.card("churn", 2)
    assert {d.endpoint: d.serving for d in v2.deployments} == {"churn-ep": True, "pinned": True}
    pinned = next(d for d in v2.deployments if d.endpoint == "pinned")
    assert pinned.events[0]["kind"] == "create"
    assert all(e["role"] == "primary" for e in pinned.events)
    text = render_card(v1, "markdown")
    assert "### Endpoint pinned (no longer serving)" in text and "| rollback | removed |" in text
