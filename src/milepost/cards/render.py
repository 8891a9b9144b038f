"""Render a model card: Markdown, self-contained HTML, JSON or a CycloneDX ML-BOM.

::

    from milepost.cards import render_card, write_card

    text = render_card(card, "markdown")      # or "html", "json", "cyclonedx"
    write_card(card, "churn-v3.html")         # the format from the suffix, or format=

The HTML page has inline CSS and inline SVG (the lineage graph), no JavaScript and no
external reference (no CDN, no fonts, no URLs); all text is escaped. Sections nobody
wrote are shown as missing, with the command that fills them. Both text formats come
from Jinja2 templates in ``milepost/cards/templates``.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import re
import tempfile
from collections import deque
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost._records import jsonable
from milepost.cards.models import CARD_FIELDS, FIELD_TITLES
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Mapping

    import jinja2

    from milepost.cards.models import CardDataset, ModelCard
    from milepost.governance.lineage import LineageGraph

__all__ = ["FORMATS", "render_card", "write_card"]

#: The formats a card renders to.
FORMATS = ("markdown", "html", "json", "cyclonedx")
_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
#: Metrics a slice table shows, in this order, when the evaluation has them.
_SLICE_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "rmse", "mae", "r2")
#: What a training data table shows per column.
_COLUMN_KEYS = (
    "name",
    "type",
    "nullable",
    "nulls",
    "null_fraction",
    "min",
    "max",
    "mean",
    "distinct",
)
#: The most lineage nodes a text card lists per direction.
_LINEAGE_LIST = 40


def _time(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _md(value: Any) -> str:
    """Text safe in a Markdown table cell (pipes escaped, one line)."""
    text = _num(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _walk(graph: LineageGraph, forward: bool) -> list[Any]:
    """Nodes reachable from the root along edges (downstream) or against them
    (upstream), nearest first; computed from the edges alone."""
    nxt: dict[str, list[str]] = {}
    for e in graph.edges:
        a, b = (e.source, e.target) if forward else (e.target, e.source)
        nxt.setdefault(a, []).append(b)
    seen = {graph.root}
    order: list[str] = []
    queue = deque([graph.root])
    while queue:
        for key in nxt.get(queue.popleft(), []):
            if key not in seen:
                seen.add(key)
                order.append(key)
                queue.append(key)
    nodes = {n.key: n for n in graph.nodes}
    return [nodes[k] for k in order if k in nodes]


def _lineage_svg(graph: LineageGraph) -> str | None:
    """The lineage part's SVG drawing of the graph, or None when it is not installed."""
    for module in ("milepost.governance.lineage_html", "milepost.governance.lineage"):
        try:
            draw = getattr(importlib.import_module(module), "lineage_svg", None)
        except ImportError:
            continue
        if callable(draw):
            try:
                return str(draw(graph))
            except NotImplementedError:
                return None
    return None


def _slice_tables(slices: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    tables = []
    for column, values in slices.items():
        keys = [
            k for k in _SLICE_METRICS if any(k in m and m[k] is not None for m in values.values())
        ]
        rows = [
            {"value": value, "n": m.get("n"), "metrics": [m.get(k) for k in keys]}
            for value, m in values.items()
        ]
        tables.append({"column": column, "metrics": keys, "rows": rows})
    return tables


def _evaluations(card: ModelCard) -> list[dict[str, Any]]:
    """One entry per evaluation dataset: the newest evaluation's metrics, each slice
    column from the newest evaluation that has it (the gates' re-scorings store none),
    and how many evaluations on that data are stored."""
    by_dataset: dict[str | None, list[Any]] = {}
    for e in card.evaluations:  # newest first
        by_dataset.setdefault(e.dataset_ref, []).append(e)
    out = []
    for ref, results in by_dataset.items():
        newest = results[0]
        slices: dict[str, Any] = {}
        sliced_by: dict[str, str] = {}
        for e in results:
            for column, values in (e.slices or {}).items():
                if column not in slices:
                    slices[column] = values
                    sliced_by[column] = e.eval_id[:12]
        tables = _slice_tables(slices)
        for t in tables:
            t["eval"] = sliced_by[t["column"]]
        out.append(
            {
                "id": newest.eval_id[:12],
                "dataset": ref or "a data frame",
                "task": newest.task,
                "target": newest.target,
                "rows": newest.num_rows,
                "at": _time(newest.created_at),
                "by": newest.created_by,
                "count": len(results),
                "metrics": sorted(newest.metrics.items()),
                "slices": tables,
            }
        )
    return out


def _dataset(d: CardDataset) -> dict[str, Any]:
    """A dataset as the templates read it: every column with every statistic (None
    where the profile has none)."""
    return {
        **d.to_dict(),
        "columns": [{k: c.get(k) for k in _COLUMN_KEYS} for c in d.columns],
    }


def _view(card: ModelCard, *, html: bool) -> dict[str, Any]:
    """What the templates show, computed once (the templates only lay it out)."""
    from milepost.evaluation.fairness import GROUP_COLUMNS

    details = [
        ("Model", card.name),
        ("Version", str(card.version)),
        ("URI", card.uri),
        ("Stage", card.stage),
        ("Aliases", ", ".join(card.aliases) or "-"),
        ("Flavor", card.flavor),
        ("Author", card.author),
        ("Created", _time(card.created_at)),
        ("Run", card.run_id or "-"),
        ("Code version", card.code_version or "-"),
        ("Description", card.description or "-"),
    ]
    env = card.environment
    if env:
        packages = env.get("packages") or []
        details.append(
            (
                "Environment",
                f"Python {env.get('python_version', '?')} on {env.get('platform', '?')}, "
                f"{len(packages)} packages (env {str(env.get('env_hash', ''))[:12]})",
            )
        )
    fields = []
    for name in CARD_FIELDS:
        title, hint = FIELD_TITLES[name]
        written = card.fields.get(name)
        fields.append(
            {
                "name": name,
                "title": title,
                "hint": hint,
                "text": written.text if written else None,
                "scope": written.scope if written else None,
                "by": written.updated_by if written else None,
                "at": _time(written.updated_at) if written else None,
                "command": card.fill_command(name),
            }
        )
    evaluations = _evaluations(card)
    fairness = [
        {
            "id": f.audit_id[:12],
            "dataset": f.dataset_ref or "a data frame",
            "target": f.target,
            "rows": f.num_rows,
            "at": _time(f.created_at),
            "min_group_size": f.min_group_size,
            "summary": [(feature, values) for feature, values in f.summary.items()],
            "groups": [{k: g.get(k) for k in GROUP_COLUMNS} for g in f.groups],
            "unreliable": f.unreliable_groups,
        }
        for f in card.fairness
    ]
    promotions = [
        {
            "id": r.request_id[:12],
            "target": r.target_stage,
            "status": r.status,
            "by": r.requested_by,
            "at": _time(r.created_at),
            "reason": r.reason,
            "decision": r.decision_reason,
            "gates": [
                {"name": g.name, "kind": g.kind, "status": g.status, "message": g.message}
                for g in r.gates
            ],
        }
        for r in card.promotions
    ]
    failed = [
        {
            "request": r.request_id[:12],
            "target": r.target_stage,
            "gate": g.name,
            "kind": g.kind,
            "message": g.message,
        }
        for r, g in card.failed_gates
    ]
    lineage: dict[str, Any] | None = None
    if card.lineage is not None:
        up, down = _walk(card.lineage, False), _walk(card.lineage, True)
        lineage = {
            "nodes": len(card.lineage.nodes),
            "edges": len(card.lineage.edges),
            "upstream": [(n.kind, n.label) for n in up[:_LINEAGE_LIST]],
            "downstream": [(n.kind, n.label) for n in down[:_LINEAGE_LIST]],
            "more": max(0, len(up) - _LINEAGE_LIST) + max(0, len(down) - _LINEAGE_LIST),
            "svg": _lineage_svg(card.lineage) if html else None,
        }
    return {
        "card": card,
        "title": f"Model card: {card.name} v{card.version}",
        "generated": _time(card.generated_at),
        "details": details,
        "fields": fields,
        "missing": [f for f in fields if f["text"] is None],
        "metrics": sorted(card.metrics.items()),
        "training": [_dataset(d) for d in card.training_data],
        "evaluation_data": [_dataset(d) for d in card.evaluation_data],
        "evaluations": evaluations,
        "fairness": fairness,
        "promotions": promotions,
        "failed_gates": failed,
        "history": [
            {
                "at": _time(e.at),
                "from": e.from_stage,
                "to": e.to_stage,
                "by": e.actor,
                "reason": e.reason or "",
                "request": (e.request_id or "-")[:12],
            }
            for e in card.stage_history
        ],
        "deployments": [
            {
                "endpoint": d.endpoint,
                "roles": ", ".join(d.roles) or "-",
                "serving": d.serving,
                "first": _time(d.first_at),
                "last": _time(d.last_at),
                "events": [
                    {**ev, "at": _time(ev.get("at")), "role": ev.get("role") or "removed"}
                    for ev in d.events
                ],
            }
            for d in card.deployments
        ],
        "lineage": lineage,
        "notes": card.notes,
        "signature": card.signature,
        "feature_refs": card.feature_refs,
    }


@functools.cache
def _template(name: str, autoescape: bool) -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(
        autoescape=autoescape,  # noqa: S701 (off for Markdown only; HTML escapes)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["md"] = _md
    env.filters["time"] = _time
    text = resources.files("milepost.cards").joinpath(f"templates/{name}")
    return env.from_string(text.read_text(encoding="utf-8"))


def render_card(card: ModelCard, format: str = "markdown") -> str:
    """The card as text in one of :data:`FORMATS`.

    Args:
        card: a :class:`~milepost.cards.ModelCard` (``rt.cards.card(name, version)``).
        format: ``markdown``, ``html`` (one self-contained page), ``json``
            (``card.to_dict()``) or ``cyclonedx`` (a CycloneDX 1.6 ML-BOM, validated).

    Raises:
        InvalidInput: an unknown format. IntegrityViolation: the BOM failed validation.
    """
    if format not in FORMATS:
        raise InvalidInput(
            f"A model card renders as {', '.join(FORMATS)}; got {format!r}.",
            hint="Pick one with --format.",
        )
    if format == "json":
        return json.dumps(jsonable(card.to_dict()), indent=2, allow_nan=False) + "\n"
    if format == "cyclonedx":
        from milepost.cards.cyclonedx import cyclonedx_json

        return cyclonedx_json(card)
    if format == "html":
        from markupsafe import Markup

        view = _view(card, html=True)
        if view["lineage"] and view["lineage"]["svg"]:
            # drawn by milepost.governance from the graph's records, its text escaped there
            view["lineage"]["svg"] = Markup(view["lineage"]["svg"])  # noqa: S704
        return _template("card.html.j2", True).render(**view)
    text = _template("card.md.j2", False).render(**_view(card, html=False))
    return re.sub(r"\n{3,}", "\n\n", text)


def write_card(card: ModelCard, path: str | Path, *, format: str | None = None) -> Path:
    """Write the card to ``path`` (the format from ``format`` or the file's suffix:
    ``.md``, ``.html``, ``.json``, or ``.cdx.json`` for CycloneDX), atomically.

    Returns:
        The path written.

    Raises:
        InvalidInput: an unknown format or suffix. IntegrityViolation: an invalid BOM (no
            file is written then).
    """
    target = Path(path)
    if format is None:
        name = target.name.lower()
        if name.endswith((".cdx.json", ".bom.json")):
            format = "cyclonedx"
        elif target.suffix.lower() == ".json":
            format = "json"
        else:
            format = _SUFFIXES.get(target.suffix.lower())
        if format is None:
            raise InvalidInput(
                f"Cannot tell the card format from {target.name!r}.",
                hint="Name the file .md, .html, .json or .cdx.json, or pass format=.",
            )
    text = render_card(card, format)  # renders (and validates) before touching the file
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
