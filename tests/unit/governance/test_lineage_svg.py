"""The lineage drawing on graphs built by hand: columns around the root, escaping, a
cycle through an endpoint, and the page around it."""

from __future__ import annotations

import re

from milepost.governance import LineageEdge, LineageGraph, LineageNode, lineage_html, lineage_svg
from milepost.governance.lineage_html import KIND_COLOURS


def _x(svg: str) -> dict[str, float]:
    """Each node's left edge, from the SVG text."""
    found = re.findall(
        r'data-key="([^"]+)" data-kind="[^"]+"><title>.*?</title><rect x="([\d.]+)"',
        svg,
        re.S,
    )
    return {key: float(x) for key, x in found}


def _graph(*, cycle: bool = False, evil: str = "hgb") -> LineageGraph:
    nodes = (
        LineageNode("model_version", "churn/2", "churn/2", {"stage": "Production"}),
        LineageNode("run", "r1", f"run {evil}", {"status": "FINISHED"}),
        LineageNode("dataset_version", "customers@4", "customers@4", {"rows": 10}),
        LineageNode("endpoint", "churn", "endpoint churn", {}),
        LineageNode("monitor", "m", "monitor m", {}),
        LineageNode("deployment_event", "7", "create by ada", {"at": 5}),
    )
    edges = [
        LineageEdge("dataset_version:customers@4", "run:r1", "train"),
        LineageEdge("dataset_version:customers@4", "model_version:churn/2", "train"),
        LineageEdge("run:r1", "model_version:churn/2", "produced"),
        LineageEdge("model_version:churn/2", "endpoint:churn", "deployed"),
        LineageEdge("endpoint:churn", "deployment_event:7", "event"),
        LineageEdge("endpoint:churn", "monitor:m", "monitored"),
    ]
    if cycle:  # the monitor's retraining made the run: a cycle through the endpoint
        edges.append(LineageEdge("monitor:m", "run:r1", "caused"))
    return LineageGraph("model_version:churn/2", nodes, tuple(edges))


def test_columns_run_from_the_data_to_the_deployment() -> None:
    graph = _graph()
    svg = lineage_svg(graph)
    x = _x(svg)
    assert set(x) == {n.key for n in graph.nodes}
    assert x["dataset_version:customers@4"] < x["run:r1"] < x["model_version:churn/2"]
    assert x["model_version:churn/2"] < x["endpoint:churn"] < x["monitor:m"]
    assert x["monitor:m"] == x["deployment_event:7"]
    assert svg.count('class="edge"') == len(graph.edges)
    assert 'class="node root on-dark" data-key="model_version:churn/2"' in svg
    assert f'fill="{KIND_COLOURS["dataset_version"]}"' in svg
    assert "model version · Production" in svg
    assert {n.key for n in graph.upstream()} == {"run:r1", "dataset_version:customers@4"}
    assert len(graph.downstream()) == 3


def test_names_are_text_and_a_cycle_is_drawn() -> None:
    evil = "<script>alert(1)</script>"
    graph = _graph(cycle=True, evil=evil)
    svg = lineage_svg(graph, legend=False)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'class="legend"' not in svg
    x = _x(svg)
    assert len(x) == len(graph.nodes)
    # the edge that closes the cycle loops back, the rest still reads left to right
    assert x["dataset_version:customers@4"] < x["model_version:churn/2"] < x["endpoint:churn"]
    page = lineage_html(graph, title="Lineage <of> churn")
    assert "<title>Lineage &lt;of&gt; churn</title>" in page and "<script>" not in page
    assert page.count("<tr data-key=") == len(graph.upstream()) + len(graph.downstream())


def test_a_wide_graph_scrolls_instead_of_shrinking() -> None:
    chain = [LineageNode("run", f"r{i}", f"run {i}") for i in range(12)]
    edges = tuple(LineageEdge(f"run:r{i}", f"run:r{i + 1}", "child") for i in range(len(chain) - 1))
    wide = lineage_html(LineageGraph("run:r0", tuple(chain), edges))
    assert '<div class="graph wide">' in wide
    narrow = lineage_html(_graph())
    assert '<div class="graph">' in narrow
