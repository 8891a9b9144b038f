"""The card renderers and the CycloneDX export on hand-built cards (no store): edge
cases a store rarely produces, each checked against the CycloneDX 1.6 schema."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from milepost.cards import (
    CARD_FIELDS,
    CardDataset,
    CardField,
    ModelCard,
    cyclonedx_bom,
    read_fields_file,
    render_card,
    write_card,
)
from milepost.errors import InvalidInput
from milepost.evaluation.fairness import FairnessResult
from milepost.governance.lineage import LineageEdge, LineageGraph, LineageNode

EVIL = "<script>alert('x')</script> | pipe"


def _card(**changes: object) -> ModelCard:
    card = ModelCard(
        name="churn",
        version=3,
        stage="Staging",
        aliases=["challenger"],
        flavor="sklearn",
        author="ana",
        created_at=1_700_000_000_000,
        run_id="r" * 32,
        code_version="c" * 40,
        environment={"env_hash": "e" * 64, "python_version": "3.11.7", "platform": "Linux"},
        signature={"inputs": [{"name": "age", "type": "integer", "nullable": True}], "outputs": []},
        description=EVIL,
        files={"model.skops": "f" * 64, "profile.json": "not-a-digest"},
        metrics={"val_auc": 0.81},
        feature_refs=[],
        training_data=[
            CardDataset("churn.train@1", "train", "a" * 64, 10, [{"name": EVIL, "type": "int64"}]),
            CardDataset("gone@4", "train", "b" * 64, None, [], found=False),
        ],
        evaluation_data=[],
        evaluations=[],
        fairness=[
            FairnessResult(
                audit_id="9" * 32,
                model_uri="models:/churn/3",
                dataset_ref=None,
                target="churned",
                sensitive_features=["gender"],
                summary={
                    "gender": {
                        "demographic_parity_difference": 0.2,
                        "demographic_parity_ratio": 0.6,
                        "equalized_odds_difference": None,
                        "equalized_odds_ratio": None,
                    }
                },
                groups=[
                    {
                        "feature": "gender",
                        "group": "f",
                        "count": 50,
                        "selection_rate": 0.3,
                        "unreliable": False,
                    },
                    {
                        "feature": "gender",
                        "group": "x",
                        "count": 5,
                        "selection_rate": 0.18,
                        "unreliable": True,
                    },
                ],
                num_rows=55,
                min_group_size=30,
                unreliable_groups=["gender=x"],
            )
        ],
        promotions=[],
        stage_history=[],
        deployments=[],
        lineage=LineageGraph(
            root="model_version:churn/3",
            nodes=(
                LineageNode("model_version", "churn/3", "churn/3"),
                LineageNode("dataset_version", "churn.train@1", EVIL),
                LineageNode("endpoint", "ep", "ep"),
            ),
            edges=(
                LineageEdge("dataset_version:churn.train@1", "model_version:churn/3", "trained_on"),
                LineageEdge("model_version:churn/3", "endpoint:ep", "deployed"),
            ),
        ),
        fields={"ethical_considerations": CardField("ethical_considerations", EVIL, 3, "bo", 2)},
        missing=[f for f in CARD_FIELDS if f != "ethical_considerations"],
        generated_at=1_700_000_000_000,
    )
    return dataclasses.replace(card, **changes)  # type: ignore[arg-type]


def test_the_bom_validates_without_evaluations_and_with_odd_values() -> None:
    bom = cyclonedx_bom(_card())  # validated inside: raises when it does not
    model = bom["metadata"]["component"]
    # only real SHA-256 digests become hashes
    files = {f["name"]: f.get("hashes") for f in model["components"]}
    assert files["model.skops"] == [{"alg": "SHA-256", "content": "f" * 64}]
    assert files["profile.json"] is None
    # no evaluation: the metrics logged with the run
    assert model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "val_auc", "value": "0.81"}
    ]
    (assessment,) = model["modelCard"]["considerations"]["fairnessAssessments"]
    assert assessment["groupAtRisk"] == "gender=x"
    assert "demographic parity ratio 0.6" in assessment["harms"]
    assert "unreliable (< 30 rows): gender=x" in assessment["harms"]
    gone = next(c for c in bom["components"] if c["bom-ref"] == "data:gone@4")
    assert {"name": "milepost:found", "value": "false"} in gone["properties"]
    assert model["modelCard"]["considerations"]["ethicalConsiderations"] == [{"name": EVIL}]


def test_html_escapes_everything_people_and_data_wrote() -> None:
    html = render_card(_card(), "html")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'id="missing-count">9 of 10' in html
    assert "gender=x" not in html or "(unreliable)" in html
    md = render_card(_card(), "markdown")
    assert "\\| pipe" in md  # a pipe in a table cell is escaped
    assert "**Upstream** (what it was made from): dataset_version" in md
    assert "**Downstream** (what was made from it): endpoint `ep`" in md
    assert "The dataset version is no longer in the store" in md


def test_write_card_picks_the_format_from_the_suffix(tmp_path: Path) -> None:
    card = _card()
    for name, check in (
        ("c.md", lambda t: t.startswith("# Model card: churn v3")),
        ("c.html", lambda t: t.startswith("<!doctype html>")),
        ("c.json", lambda t: json.loads(t)["version"] == 3),
        ("c.cdx.json", lambda t: json.loads(t)["bomFormat"] == "CycloneDX"),
    ):
        assert check(write_card(card, tmp_path / name).read_text()), name
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_fields_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text("intended_use: x\ncontact: 3\n")
    with pytest.raises(InvalidInput, match="value of 'contact' must be text"):
        read_fields_file(path)
    path.write_text("- a list\n")
    with pytest.raises(InvalidInput, match="must map field names to text"):
        read_fields_file(path)
    path.write_text("a: [unclosed\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        read_fields_file(path)
    with pytest.raises(InvalidInput):
        read_fields_file(tmp_path / "missing.yaml")
