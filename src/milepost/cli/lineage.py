"""`milepost lineage REF`: what a model, dataset, run, endpoint or pipeline run was made
from and what was made from it, as a tree, JSON or an HTML page; with ``--models``, the
model versions trained on a dataset version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from milepost.cli._output import console, emit_json, fmt_time
from milepost.cli._runtime import runtime
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost.governance.lineage import Direction, LineageGraph, LineageNode

#: Rich style of each node kind in the tree (the HTML colours, roughly).
KIND_STYLE = {
    "dataset_version": "blue",
    "validation": "cyan",
    "feature_view_version": "cyan",
    "run": "green",
    "pipeline_run": "green",
    "pipeline_step": "green",
    "code_version": "dim",
    "evaluation": "yellow",
    "fairness_audit": "yellow",
    "promotion_request": "magenta",
    "gate_result": "yellow",
    "stage_transition": "magenta",
    "model_version": "bold magenta",
    "endpoint": "red",
    "deployment_event": "red",
    "monitor": "cyan",
    "alert": "bold red",
    "trigger": "dark_orange",
    "trigger_firing": "dark_orange",
}
_STATUS_STYLE = {"passed": "green", "failed": "red", "error": "red", "completed": "green"}
#: Attributes worth a glance after a node's label, in this order.
_GLANCE = ("stage", "status", "rows", "target_stage", "tracks", "kind", "actor", "cause")
_TIMES = ("created_at", "start_time", "started_at", "at", "raised_at", "fired_at")


def _glance(node: LineageNode) -> str:
    parts = []
    for name in _GLANCE:
        value = node.attrs.get(name)
        if value is None or str(value) in node.label:  # the label says it already
            continue
        text = escape(f"{value:,} rows" if name == "rows" else str(value))
        style = _STATUS_STYLE.get(str(value))
        parts.append(f"[{style}]{text}[/]" if style else text)
    when = next((node.attrs[t] for t in _TIMES if isinstance(node.attrs.get(t), int)), None)
    if when is not None:
        parts.append(fmt_time(when))
    if node.attrs.get("missing"):
        parts.append("[red]not in the store[/]")
    return f" [dim]({', '.join(parts)})[/]" if parts else ""


def _label(node: LineageNode, relation: str | None = None, *, glance: bool = True) -> str:
    style = KIND_STYLE.get(node.kind, "")
    kind = node.kind.replace("_", " ")
    rel = f"[dim]{escape(relation)}:[/] " if relation else ""
    more = _glance(node) if glance else ""
    first = node.label.split(" ", 1)[0].lower()
    if first in kind.split():  # "run brisk-otter-417", "step train", "gate x: passed"
        return f"{rel}[{style}]{escape(node.label)}[/]{more}"
    return f"{rel}[{style}]{kind}[/] {escape(node.label)}{more}"


def _branch(tree: Tree, graph: LineageGraph, key: str, up: bool, shown: set[str]) -> None:
    """Add ``key``'s parents (``up``) or children under ``tree``, each node expanded once
    (a node met again is marked ``(above)``)."""
    by_key = {n.key: n for n in graph.nodes}
    nexts: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges:
        a, b = (e.target, e.source) if up else (e.source, e.target)
        nexts.setdefault(a, []).append((b, e.relation))
    side = {n.key for n in (graph.upstream(key) if up else graph.downstream(key))}
    stack: list[tuple[Tree, str]] = [(tree, key)]
    while stack:
        parent, k = stack.pop(0)
        for nxt, relation in nexts.get(k, []):
            node = by_key.get(nxt)
            if node is None or nxt not in side:  # the other side, met through a cycle
                continue
            if nxt in shown:
                parent.add(_label(node, relation, glance=False) + " [dim](above)[/]")
                continue
            shown.add(nxt)
            stack.append((parent.add(_label(node, relation)), nxt))


def render_tree(graph: LineageGraph) -> list[Tree]:
    """The upstream and downstream trees of a graph (one of them when walked one way)."""
    root = graph.node(graph.root)
    trees = []
    for up, title in ((True, "made from (upstream)"), (False, "made from it (downstream)")):
        if graph.direction == ("downstream" if up else "upstream"):
            continue
        tree = Tree(f"{_label(root)}  [bold]{title}[/]")
        _branch(tree, graph, root.key, up, {root.key})
        if not tree.children:
            tree.add("[dim]nothing recorded[/]")
        trees.append(tree)
    return trees


def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="What to trace: models:/NAME/3 (or /Production), datasets:/NAME@4, "
            "runs:/RUN_ID, endpoints:/NAME, pipelines:/RUN_ID, or KIND:REF.",
            show_default=False,
        ),
    ],
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what it was made from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what was made from it.")
    ] = False,
    depth: Annotated[
        int | None,
        typer.Option(min=0, help="Follow at most this many edges from REF (default: all)."),
    ] = None,
    models: Annotated[
        bool,
        typer.Option(
            "--models",
            help="List the model versions trained on the dataset version REF (through runs, "
            "training sets and pipelines).",
        ),
    ] = False,
    stage: Annotated[
        str | None,
        typer.Option(help="With --models: only versions in this stage (Production, ...)."),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write the graph as a self-contained HTML page to FILE.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Trace lineage: what REF was made from and what was made from it.

    For example `milepost lineage models:/churn/3` (data, runs, code, evaluations, gates,
    stages, deployments and monitors around version 3), or `milepost lineage
    datasets:/customers@4 --models --stage Production` (the Production models trained
    on that data).
    """
    if upstream and downstream:
        raise InvalidInput(
            "--upstream and --downstream together are the default (both); give one or none."
        )
    if stage is not None and not models:
        raise InvalidInput(
            "--stage filters the --models list.",
            hint="Add --models: milepost lineage datasets:/NAME@4 --models --stage Production",
        )
    service = runtime().lineage
    if models:
        _models(service.models_trained_on(ref, stage=stage), ref, stage, as_json)
        return
    direction: Direction = "upstream" if upstream else "downstream" if downstream else "both"
    graph = service.graph(ref, direction=direction, depth=depth)
    if html is not None:
        from milepost.governance.lineage_html import lineage_html

        html.write_text(lineage_html(graph), encoding="utf-8")
    if as_json:
        emit_json(graph.to_dict())
        return
    for tree in render_tree(graph):
        console.print(tree)
    counts = f"{len(graph.nodes)} nodes, {len(graph.edges)} edges"
    console.print(f"[dim]{counts}{'' if depth is None else f', depth {depth}'}.[/]")
    if graph.truncated:
        console.print(
            f"[yellow]Stopped at {graph.max_nodes} nodes[/]: pass --depth or one of "
            "--upstream/--downstream to see the rest."
        )
    if html is not None:
        console.print(f"Wrote {escape(str(html))}")


def _models(nodes: list[LineageNode], ref: str, stage: str | None, as_json: bool) -> None:
    if as_json:
        emit_json([n.to_dict() for n in nodes])
        return
    where = f" in {stage}" if stage else ""
    if not nodes:
        console.print(f"No model versions{escape(where)} were trained on {escape(ref)}.")
        return
    tree = Tree(f"Model versions{escape(where)} trained on [blue]{escape(ref)}[/]")
    for node in nodes:
        tree.add(_label(node))
    console.print(tree)
