"""`milepost models card ...` as a user types it, and the HTML card opened in headless
Chromium, offline: every section shows, nothing is fetched, no console errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import cli_in_process
from tests.e2e.test_cli_models import TRAIN

EVIL = "<script>alert(1)</script>"
ENV = {"MILEPOST_USER": "alice"}
SETUP = (
    TRAIN
    + """
milepost.evaluate("models:/churn/2", "churn.test@1", target="churned", slices=["gender"])
milepost.Client().set_promotion_policy("churn", {"production": [
    {"kind": "metric_vs_baseline", "dataset": "churn.test@1", "target": "churned",
     "threshold": 0.9}]})
try:
    milepost.Client().promote("churn", 2, "Production")
except milepost.errors.GateFailed:
    pass
"""
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """churn v1 and v2 trained on churn.train@1; v2 evaluated with slices and refused
    by a gate whose threshold it cannot reach."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-c", SETUP], cwd=tmp_path, check=True, env={**os.environ, **ENV}
    )
    return tmp_path


def _cli(project: Path, *args: str) -> Any:
    return cli_in_process(*args, cwd=project, env=ENV)


def test_card_from_the_command_line(project: Path) -> None:
    out = _cli(project, "models", "card", "churn", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# Model card: churn v2\n")
    assert "10 of 10 written sections are missing" in out.stdout
    assert 'milepost models card-set churn intended_use "..."' in out.stdout
    assert "**Failed gates:**" in out.stdout and "threshold 0.9" in out.stdout
    wrote = _cli(project, "models", "card-set", "churn", "intended_use", "Rank churn risk.")
    assert wrote.returncode == 0, wrote.stderr
    assert "Wrote intended_use of the card of churn (every version)." in wrote.stdout
    (project / "card.yaml").write_text(f"license: Apache-2.0\ncontact: {EVIL}\n")
    wrote = _cli(
        project, "models", "card-set", "churn", "--from-file", "card.yaml", "--version", "2"
    )
    assert wrote.returncode == 0, wrote.stderr
    data = json.loads(_cli(project, "models", "card", "churn", "2", "--json").stdout)
    assert data["fields"]["intended_use"]["text"] == "Rank churn risk."
    assert data["fields"]["license"]["scope"] == "version 2"
    assert "license" not in data["missing"] and len(data["missing"]) == 7
    assert any(e["slices"].get("gender") for e in data["evaluations"])
    # v1's card does not see v2's sections
    v1 = json.loads(_cli(project, "models", "card", "churn", "1", "--format", "json").stdout)
    assert "license" in v1["missing"] and "intended_use" not in v1["missing"]
    cleared = _cli(project, "models", "card-clear", "churn", "intended_use")
    assert cleared.returncode == 0 and "Cleared intended_use" in cleared.stdout
    bom = _cli(
        project, "models", "card", "churn", "2", "--format", "cyclonedx", "--out", "bom.cdx.json"
    )
    assert bom.returncode == 0, bom.stderr
    doc = json.loads((project / "bom.cdx.json").read_text())
    assert doc["specVersion"] == "1.6" and "modelCard" in doc["metadata"]["component"]
    bad = _cli(project, "models", "card-set", "churn", "intended_usage", "x")
    assert bad.returncode == 1
    assert "no field 'intended_usage'" in bad.stderr and "'intended_use'" in bad.stderr
    missing = _cli(project, "models", "card-set", "churn", "license")
    assert missing.returncode == 1 and "Give a FIELD and its TEXT" in missing.stderr
    assert _cli(project, "models", "card", "churn", "7").returncode == 1
    audit = json.loads(
        _cli(project, "audit", "list", "--action", "model_card.update", "--json").stdout
    )
    assert len(audit) == 4
    assert _cli(project, "audit", "verify").returncode == 0


def test_html_card_renders_offline_in_headless_chromium(
    project: Path, offline_page: Callable[..., Any]
) -> None:
    _cli(project, "models", "card-set", "churn", "contact", EVIL)
    _cli(project, "models", "card-set", "churn", "limitations", "Two lines\nof text.")
    out = _cli(project, "models", "card", "churn", "2", "--format", "html", "--out", "card.html")
    assert out.returncode == 0, out.stderr
    html = project / "card.html"
    with offline_page(html) as opened:
        page = opened.page
        assert page.title() == "Model card: churn v2"
        for section in (
            "details",
            "fields",
            "training-data",
            "evaluation-data",
            "metrics",
            "fairness",
            "gates",
            "lineage",
            "stage-history",
            "deployments",
        ):
            box = page.locator(f"section#{section}").bounding_box()
            assert box is not None and box["height"] > 20, section
        assert page.locator("#missing-count").inner_text() == "8 of 10"
        assert page.locator("#field-license.missing").count() == 1
        assert page.locator("#field-contact .text").inner_text() == EVIL
        assert page.locator("#field-limitations .text").inner_text() == "Two lines\nof text."
        # the training profile, the slice table and the failed gate
        profile = page.locator("table.profile[data-dataset='churn.train@1'] tr")
        assert profile.count() == 16  # a header and 15 columns
        assert page.locator("table.slice[data-column='gender'] tr").count() >= 3
        assert "threshold 0.9" in page.locator("#failed-gates").inner_text()
        assert page.locator("tr.failed").count() == 1
        # the lineage graph, drawn inline, with the version and its training data
        svg = page.locator("section#lineage svg").first
        box = svg.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50
        lineage = page.locator("section#lineage").inner_text()
        assert "churn.train@1" in lineage and "churn/2" in lineage
        page.screenshot(path=str(project / "card.png"), full_page=True)
    assert (project / "card.png").stat().st_size > 10_000
