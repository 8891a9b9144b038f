"""`milepost lineage ...` as a user types it, on a history recorded with the public API
(tests/unit/governance/_history.py): the tree both ways, JSON, depth and one direction,
the dataset question, the HTML file, and refusals with what to type instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from tests.e2e.test_cli import cli_in_process
from tests.unit.governance import _history
from tests.unit.governance._history import History

ENV = {"MILEPOST_USER": "tester"}


@pytest.fixture
def home(tmp_path: Path, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> History:
    milepost.configure(cwd=tmp_path, user="tester")
    history = _history.build(churn_models, churn_frame, pipeline=False)
    milepost.reset()
    return history


def test_the_tree_both_ways_and_one_way(tmp_path: Path, home: History) -> None:
    out = cli_in_process("lineage", "models:/churn/1", cwd=tmp_path, env=ENV)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    up, _, down = text.partition("made from it (downstream)")
    assert "made from (upstream)" in up
    assert "produced: run" in up and "train: dataset version lineage.train@1" in up
    assert "eval: dataset version lineage.test@1" in up and "(1,500 rows," in up
    assert "deployed: endpoint lineage-ep" in down
    assert "requested: request to Production (completed)" in down
    # the gate the evaluation was evidence for is shown once, and marked when met again
    assert "evidence: gate metric_vs_baseline: passed (" in down
    assert "gate: gate metric_vs_baseline: passed (above)" in down
    assert "gate: gate data_validation: passed (" in down
    assert "watched_by: trigger lineage-retrain (drift)" in down
    assert "model version churn/1 (Production" in text
    assert "audited: fairness audit " in down
    graph = json.loads(
        cli_in_process("lineage", "models:/churn/1", "--json", cwd=tmp_path, env=ENV).stdout
    )
    # a code version node only when the run recorded a git commit: that depends on how the
    # tests were started (`python -m pytest` in a checkout records one, `.venv/bin/pytest`
    # does not)
    others = [n for n in graph["nodes"] if n["kind"] != "code_version"]
    assert len(others) == 15 and f"{len(graph['nodes'])} nodes" in text
    one_way = cli_in_process(
        "lineage", "models:/churn/1", "--upstream", "--depth", "1", cwd=tmp_path, env=ENV
    )
    assert one_way.returncode == 0, one_way.stderr
    assert "downstream" not in one_way.stdout and "deployed" not in one_way.stdout
    assert "produced: run" in one_way.stdout and "depth 1" in one_way.stdout


def test_json_and_the_dataset_question(tmp_path: Path, home: History) -> None:
    out = cli_in_process("lineage", "endpoints:/lineage-ep", "--json", cwd=tmp_path, env=ENV)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["root"] == "endpoint:lineage-ep" and doc["truncated"] is False
    edges = {(e["source"], e["relation"], e["target"]) for e in doc["edges"]}
    assert ("model_version:churn/1", "deployed", "endpoint:lineage-ep") in edges
    assert ("endpoint:lineage-ep", "event", "deployment_event:1") in edges
    assert f"run:{home.runs['churn/1']}" in {n["key"] for n in doc["nodes"]}
    assert "model_version:churn/2" not in {n["key"] for n in doc["nodes"]}
    models = cli_in_process(
        "lineage", "datasets:/lineage.train@1", "--models", "--stage", "Production", "--json",
        cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert models.returncode == 0, models.stderr
    assert [(n["ref"], n["attrs"]["stage"]) for n in json.loads(models.stdout)] == [
        ("churn/1", "Production")
    ]
    text = cli_in_process("lineage", "lineage.train@1", "--models", cwd=tmp_path, env=ENV).stdout
    assert "Model versions trained on lineage.train@1" in text
    assert "churn/1 (Production" in text and "churn/2 (None" in text and "other/1" not in text
    none = cli_in_process("lineage", "lineage.test@1", "--models", cwd=tmp_path, env=ENV)
    assert "No model versions were trained on lineage.test@1." in none.stdout


def test_the_html_file(tmp_path: Path, home: History) -> None:
    page = tmp_path / "lineage.html"
    out = cli_in_process("lineage", "models:/churn/1", "--html", str(page), cwd=tmp_path, env=ENV)
    assert out.returncode == 0, out.stderr
    assert f"Wrote {page}" in out.stdout.replace("\n", "")
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html
    assert (
        'data-root="model_version:churn/1"' in html and "<title>Lineage of churn/1</title>" in html
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["models:/chrun/1"],
            "No model version 'chrun/1' is recorded. Did you mean 'churn/1' or 'churn/2'?",
        ),
        (["datasets:/lineage.trian@1"], "Did you mean 'lineage.train@1'"),
        (["model:/churn/1"], "unknown scheme 'model:/'"),
        (["models:/churn/1", "--upstream", "--downstream"], "give one or none"),
        (["models:/churn/1", "--stage", "Production"], "Add --models"),
        (["lineage.train@1", "--models", "--stage", "Prodution"], "Did you mean 'Production'"),
    ],
)
def test_refusals_say_what_to_type(
    tmp_path: Path, home: History, args: list[str], expected: str
) -> None:
    out = cli_in_process("lineage", *args, cwd=tmp_path, env=ENV)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert expected in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr
