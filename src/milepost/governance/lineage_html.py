"""The lineage graph drawn as inline SVG, and a self-contained HTML page around it.

:func:`lineage_svg` lays the graph out in layers from left to right (what was used on the
left, what was made of it on the right: each node one layer past the furthest node it
was made from), orders each layer to follow its parents, colours nodes by kind and
outlines the root. :func:`lineage_html` wraps it in a page with a legend and the node
and edge tables. No script, no external reference; every text goes through
:func:`html.escape`, so a name like ``<script>`` stays text. Model cards embed the SVG.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milepost.governance.lineage import LineageGraph, LineageNode

__all__ = ["KIND_COLOURS", "lineage_html", "lineage_svg"]

#: Fill colour of each node kind (data blue, training green, checks amber, registry purple,
#: serving red, monitoring and automation teal/brown).
KIND_COLOURS: dict[str, str] = {
    "dataset_version": "#4c78a8",
    "validation": "#9ecae9",
    "feature_view_version": "#72b7b2",
    "run": "#54a24b",
    "pipeline_run": "#88d27a",
    "pipeline_step": "#b5e3a8",
    "code_version": "#bab0ac",
    "evaluation": "#eeca3b",
    "fairness_audit": "#f2a93b",
    "promotion_request": "#d6a5c9",
    "gate_result": "#ffbf79",
    "stage_transition": "#c9a0dc",
    "model_version": "#b279a2",
    "endpoint": "#e45756",
    "deployment_event": "#ff9d98",
    "monitor": "#439894",
    "alert": "#f58518",
    "trigger": "#9d755d",
    "trigger_firing": "#d8b5a5",
}
_DEFAULT = "#cccccc"
_DARK_TEXT = {"#4c78a8", "#54a24b", "#b279a2", "#e45756", "#439894", "#9d755d"}

NODE_W, NODE_H = 210, 40
GAP_X, GAP_Y = 70, 14
PAD = 16
LEGEND_ROW = 18


def _clip(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _layers(graph: LineageGraph) -> dict[str, int]:
    """Longest-path layers: 0 for nodes made from nothing in the graph, else one past the
    furthest parent. A cycle (not expected: lineage only points forward) is broken by
    placing its remaining nodes after everything placed."""
    keys = [n.key for n in graph.nodes]
    parents: dict[str, list[str]] = {k: [] for k in keys}
    children: dict[str, list[str]] = {k: [] for k in keys}
    for e in graph.edges:
        if e.source in parents and e.target in parents and e.source != e.target:
            parents[e.target].append(e.source)
            children[e.source].append(e.target)
    waiting = {k: len(set(parents[k])) for k in keys}
    layer: dict[str, int] = {}
    ready = [k for k in keys if waiting[k] == 0]
    while len(layer) < len(keys):
        if not ready:  # a cycle: place the first unplaced node after what is placed
            k = next(k for k in keys if k not in layer)
            layer[k] = max(layer.values(), default=-1) + 1
            ready = [k]
        else:
            for k in ready:
                layer.setdefault(k, max((layer.get(p, -1) + 1 for p in parents[k]), default=0))
        nxt = []
        for k in ready:
            for c in dict.fromkeys(children[k]):
                if c in layer:
                    continue
                waiting[c] -= 1
                if waiting[c] == 0:
                    nxt.append(c)
        ready = nxt
    return layer


def _positions(graph: LineageGraph) -> tuple[dict[str, tuple[float, float]], int, int]:
    """``{key: (x, y)}`` of each node's top-left corner, and the drawing's width and
    height (before the legend)."""
    layer = _layers(graph)
    order = {n.key: i for i, n in enumerate(graph.nodes)}
    kinds = {n.key: n.kind for n in graph.nodes}
    parents: dict[str, list[str]] = {}
    for e in graph.edges:
        parents.setdefault(e.target, []).append(e.source)
    columns: dict[int, list[str]] = {}
    for k in sorted(layer, key=lambda k: order[k]):
        columns.setdefault(layer[k], []).append(k)
    slot: dict[str, float] = {}
    for col in sorted(columns):
        keys = columns[col]

        def rank(k: str) -> tuple[float, str, int]:
            known = [slot[p] for p in parents.get(k, []) if p in slot]
            centre = sum(known) / len(known) if known else float(order[k])
            return (centre, kinds[k], order[k])

        keys.sort(key=rank)
        for i, k in enumerate(keys):
            slot[k] = float(i)
    tallest = max((len(v) for v in columns.values()), default=1)
    height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y
    width = PAD * 2 + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    pos: dict[str, tuple[float, float]] = {}
    for col, keys in columns.items():
        used = len(keys) * NODE_H + (len(keys) - 1) * GAP_Y
        top = PAD + (height - 2 * PAD - used) / 2
        for i, k in enumerate(keys):
            pos[k] = (PAD + col * (NODE_W + GAP_X), top + i * (NODE_H + GAP_Y))
    return pos, width, height


def _tooltip(node: LineageNode) -> str:
    attrs = ", ".join(f"{k}={v}" for k, v in node.attrs.items() if v is not None)
    return f"{node.key}" + (f"\n{attrs}" if attrs else "")


def lineage_svg(graph: LineageGraph, *, legend: bool = True) -> str:
    """The graph as one ``<svg>`` element (inline, self-contained).

    Each node is a ``<g class="node">`` with ``data-key`` and ``data-kind``, a rectangle
    filled by kind (:data:`KIND_COLOURS`), its label and kind; the root has class
    ``root`` and a thick outline. Each edge is a ``<path class="edge">`` with
    ``data-relation`` and a tooltip. ``legend`` adds a row per kind present below.
    """
    pos, width, height = _positions(graph)
    kinds_present = list(dict.fromkeys(n.kind for n in graph.nodes))
    legend_h = (PAD + LEGEND_ROW * ((len(kinds_present) + 3) // 4)) if legend else 0
    width = max(width, 4 * 170 + 2 * PAD if legend else 0)
    total_h = height + legend_h
    root_label = next((n.label for n in graph.nodes if n.key == graph.root), graph.root)
    title = f"Lineage of {root_label}"
    out = [
        f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{total_h}" viewBox="0 0 {width} {total_h}" role="img" '
        f'aria-label="{escape(title)}" data-root="{escape(graph.root)}">'
        f"<title>{escape(title)}</title>",
        '<defs><marker id="lineage-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>',
        "<style>"
        ".lineage .edge{fill:none;stroke:#999;stroke-width:1.3}"
        ".lineage text{font:12px system-ui,-apple-system,'Segoe UI',sans-serif;fill:#222}"
        ".lineage text.kind{font-size:10px;fill:#444}"
        ".lineage .on-dark text{fill:#fff}.lineage .on-dark text.kind{fill:#eee}"
        ".lineage .root rect{stroke:#111;stroke-width:3}"
        ".lineage .missing rect{stroke-dasharray:4 3;opacity:.6}"
        "</style>",
    ]
    for e in graph.edges:
        if e.source not in pos or e.target not in pos:
            continue
        (sx, sy), (tx, ty) = pos[e.source], pos[e.target]
        x1, y1 = sx + NODE_W, sy + NODE_H / 2
        x2, y2 = tx, ty + NODE_H / 2
        if x2 <= x1:  # same or earlier layer (a cycle): loop around the bottom
            bend = NODE_H
            d = (
                f"M {x1:.1f} {y1:.1f} C {x1 + 40:.1f} {y1 + bend:.1f} "
                f"{x2 - 40:.1f} {y2 + bend:.1f} {x2:.1f} {y2:.1f}"
            )
        else:
            mid = (x1 + x2) / 2
            d = f"M {x1:.1f} {y1:.1f} C {mid:.1f} {y1:.1f} {mid:.1f} {y2:.1f} {x2:.1f} {y2:.1f}"
        out.append(
            f'<path class="edge" d="{d}" marker-end="url(#lineage-arrow)" '
            f'data-source="{escape(e.source)}" data-target="{escape(e.target)}" '
            f'data-relation="{escape(e.relation)}"><title>{escape(e.source)} '
            f"{escape(e.relation)} → {escape(e.target)}</title></path>"
        )
    for n in graph.nodes:
        x, y = pos[n.key]
        fill = KIND_COLOURS.get(n.kind, _DEFAULT)
        classes = ["node"]
        if n.key == graph.root:
            classes.append("root")
        if fill in _DARK_TEXT:
            classes.append("on-dark")
        if n.attrs.get("missing"):
            classes.append("missing")
        sub = n.kind.replace("_", " ")
        stage = n.attrs.get("stage") if n.kind == "model_version" else None
        if stage:
            sub += f" · {stage}"
        out.append(
            f'<g class="{" ".join(classes)}" data-key="{escape(n.key)}" '
            f'data-kind="{escape(n.kind)}"><title>{escape(_tooltip(n))}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" '
            f'fill="{fill}" stroke="#555" stroke-width="1"/>'
            f'<text x="{x + 8:.1f}" y="{y + 17:.1f}">{escape(_clip(n.label))}</text>'
            f'<text class="kind" x="{x + 8:.1f}" y="{y + 32:.1f}">{escape(_clip(sub, 32))}</text>'
            "</g>"
        )
    if legend:
        for i, kind in enumerate(kinds_present):
            lx = PAD + (i % 4) * 170
            ly = height + PAD / 2 + (i // 4) * LEGEND_ROW
            out.append(
                f'<g class="legend" data-kind="{escape(kind)}">'
                f'<rect x="{lx}" y="{ly:.1f}" width="12" height="12" rx="2" '
                f'fill="{KIND_COLOURS.get(kind, _DEFAULT)}" stroke="#555"/>'
                f'<text x="{lx + 18}" y="{ly + 10:.1f}">{escape(kind.replace("_", " "))}</text></g>'
            )
    out.append("</svg>")
    return "".join(out)


_CSS = """
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; padding: 20px 28px 40px; max-width: 1400px; color: #222; }
h1 { font-size: 22px; margin: 0 0 2px; overflow-wrap: anywhere; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #666; margin: 0 0 14px; }
.warn { border: 1px solid #c0392b; background: #fdecea; padding: 8px 12px; border-radius: 6px; }
.graph { overflow: auto; border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
.graph svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { border-bottom: 2px solid #ccc; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          border: 1px solid #555; margin-right: 6px; }
code { font-size: 12px; }
"""


_TIMES = frozenset({"created_at", "start_time", "started_at", "at", "raised_at", "fired_at"})


def _value(name: str, value: Any) -> str:
    if name in _TIMES and isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _attrs_text(attrs: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {_value(k, v)}" for k, v in attrs.items() if v is not None)


def _rows(nodes: list[LineageNode]) -> str:
    if not nodes:
        return '<p class="sub">Nothing recorded.</p>'
    rows = "".join(
        f'<tr data-key="{escape(n.key)}"><td><span class="swatch" style="background:'
        f'{KIND_COLOURS.get(n.kind, _DEFAULT)}"></span>{escape(n.kind.replace("_", " "))}</td>'
        f"<td>{escape(n.label)}</td><td><code>{escape(n.ref)}</code></td>"
        f"<td>{escape(_attrs_text(n.attrs))}</td></tr>"
        for n in nodes
    )
    return (
        "<table><thead><tr><th>Kind</th><th>Label</th><th>Ref</th><th>Details</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def lineage_html(graph: LineageGraph, *, title: str | None = None) -> str:
    """A self-contained HTML page: the graph (:func:`lineage_svg`), what the root was made
    from and what was made from it (nearest first), and every edge.

    Args:
        graph: the graph, from :meth:`LineageService.graph`.
        title: the page title (default ``Lineage of <root label>``).
    """
    root = next((n for n in graph.nodes if n.key == graph.root), None)
    page_title = title or f"Lineage of {root.label if root else graph.root}"
    depth = "all" if graph.depth is None else str(graph.depth)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    warn = (
        f'<p class="warn" id="truncated">The walk stopped at {graph.max_nodes} nodes; '
        "ask for less depth or one direction to see the rest.</p>"
        if graph.truncated
        else ""
    )
    edges = "".join(
        f"<tr><td><code>{escape(e.source)}</code></td><td>{escape(e.relation)}</td>"
        f"<td><code>{escape(e.target)}</code></td></tr>"
        for e in graph.edges
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(page_title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1 id="title">{escape(page_title)}</h1>'
        f'<p class="sub">Root <code id="root">{escape(graph.root)}</code> · '
        f"{escape(graph.direction)} · depth {escape(depth)} · {len(graph.nodes)} nodes, "
        f"{len(graph.edges)} edges · generated {now} (UTC) by Milepost.</p></header>"
        f'{warn}<section id="graph"><h2>Graph</h2><div class="graph">{lineage_svg(graph)}'
        "</div></section>"
        f'<section id="upstream"><h2>Made from (upstream)</h2>{_rows(graph.upstream())}'
        "</section>"
        f'<section id="downstream"><h2>Made from it (downstream)</h2>'
        f"{_rows(graph.downstream())}</section>"
        '<section id="edges"><h2>Edges</h2><table><thead><tr><th>From</th><th>Relation</th>'
        f"<th>To</th></tr></thead><tbody>{edges}</tbody></table></section>"
        "</body></html>\n"
    )
