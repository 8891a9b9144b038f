"""The lineage HTML page opened in headless Chromium, offline: every node drawn with a
real size, the root outlined and labelled, edges drawn, a run named like a script shown
as text, nothing fetched, no console errors; a screenshot is kept next to the page.

The browser is ``offline_page`` of tests/e2e/conftest.py (Debian's Chromium through
Playwright; skipped locally without them, a failure under CI=true).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

import milepost
from milepost.governance import lineage_html, lineage_svg
from tests.e2e.test_monitoring_report import EVIL
from tests.unit.governance import _history


def test_lineage_page_renders_offline_in_headless_chromium(
    tmp_path: Path,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
    offline_page: Callable[..., Any],
) -> None:
    rt = milepost.configure(home=tmp_path / "home", user="tester")
    _history.build(churn_models, churn_frame, pipeline=False, run_name=EVIL)
    graph = rt.lineage.graph("models:/churn/1")
    page_file = tmp_path / "lineage.html"
    page_file.write_text(lineage_html(graph), encoding="utf-8")
    assert lineage_svg(graph).startswith('<svg class="lineage"')
    with offline_page(page_file, width=1400) as opened:
        page = opened.page
        assert page.title() == "Lineage of churn/1"
        assert page.locator("#root").inner_text() == "model_version:churn/1"
        nodes = page.locator("svg.lineage g.node")
        assert nodes.count() == len(graph.nodes)
        for node in graph.nodes:
            g = page.locator(f'svg.lineage g.node[data-key="{node.key}"]')
            assert g.count() == 1, node.key
            box = g.locator("rect").bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 20, node.key
        root = page.locator("svg.lineage g.node.root")
        assert root.count() == 1
        assert root.get_attribute("data-key") == "model_version:churn/1"
        assert root.locator("text").first.text_content() == "churn/1"
        assert root.locator("rect").get_attribute("fill") == "#b279a2"  # model versions
        # data on the left of the model, deployment on its right
        x = {
            k: page.locator(f'g.node[data-key="{k}"] rect').bounding_box()["x"]  # type: ignore[index]
            for k in ("dataset_version:lineage.train@1", graph.root, "endpoint:lineage-ep")
        }
        assert x["dataset_version:lineage.train@1"] < x[graph.root] < x["endpoint:lineage-ep"]
        assert page.locator("svg.lineage path.edge").count() == len(graph.edges)
        assert page.locator('svg.lineage g.legend[data-kind="endpoint"]').count() == 1
        # the run named like a script is text on the page, and never ran
        assert page.get_by_text(f"run {EVIL} (").count() >= 1
        assert page.locator("script").count() == 0
        assert page.locator("#upstream tbody tr").count() == len(graph.upstream())
        assert page.locator("#downstream tbody tr").count() == len(graph.downstream())
        page.screenshot(path=str(tmp_path / "lineage.png"), full_page=True)
    assert (tmp_path / "lineage.png").stat().st_size > 10_000
