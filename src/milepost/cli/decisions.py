"""`milepost decisions ...`: a consequential endpoint's decisions, each with why.

`show REQUEST_ID` reads one decision back from the prediction log (input, model version,
prediction, explanation) and adds the lineage of the version that made it; `list` shows
an endpoint's recent decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time, fmt_value
from milepost.cli._runtime import runtime
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost._context import Runtime
    from milepost.serving.decisions import DecisionRecord

app = typer.Typer(
    help="Decisions of consequential endpoints: input, model version, prediction, "
    "explanation and lineage, by request id.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

#: What `show` prints of the lineage, in this order (the rest is in --json).
_LINEAGE_KINDS = {
    "dataset_version": "training data",
    "feature_view_version": "features",
    "run": "run",
    "pipeline_run": "pipeline run",
    "code_version": "code version",
    "evaluation": "evaluation",
    "fairness_audit": "fairness audit",
    "promotion_request": "promotion",
    "gate_result": "gate",
}


def _lineage(rt: Runtime, uri: str) -> tuple[dict[str, Any] | None, str | None]:
    """The upstream lineage of a model version as JSON, or why there is none."""
    from milepost.errors import MilepostError

    lineage = getattr(rt, "lineage", None)
    if lineage is None:
        return None, "lineage is not available in this installation"
    try:
        graph = lineage.graph(uri, direction="upstream")
    except NotImplementedError:
        return None, "lineage is not available in this installation"
    except MilepostError as exc:
        return None, exc.message
    data: dict[str, Any] = graph.to_dict()
    return data, None


def _prediction(rec: DecisionRecord) -> str:
    text = f"{fmt_value(rec.prediction)}"
    proba = rec.probabilities
    if proba and proba.get("classes") is not None:
        classes, p = proba["classes"], proba["p"]
        text += " (" + ", ".join(f"{c}: {v:.3f}" for c, v in zip(classes, p, strict=False)) + ")"
    return text


def _explanation_table(explanation: dict[str, Any], features: dict[str, Any]) -> Any:
    rows = [
        [name, escape(fmt_value(features.get(name, ""))), f"{value:+.4f}"]
        for name, value in explanation["contributions"].items()
    ]
    if explanation.get("other_features"):
        rows.append(
            [f"({explanation['other_features']} others)", "", f"{explanation['other']:+.4f}"]
        )
    table, _ = fit_table(
        ["feature", "value", Col("contribution", justify="right")],
        rows,
        title=f"why: {explanation.get('method') or 'SHAP'} contributions "
        f"({explanation['output_space']})",
        title_justify="left",
    )
    return table


def show(
    request_id: Annotated[str, typer.Argument(help="The request_id of a /predict answer.")],
    row: Annotated[
        int, typer.Option(min=0, max=1_000_000, help="Which row of a many-row request.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """One decision: its input, the model version that made it, the prediction, the
    explanation (top contributions; the rest summed) and that version's lineage
    (training data, run, code version, evaluations, promotion gates)."""
    rt = runtime()
    rec = rt.serving.decision(request_id, row=row)
    graph, missing = _lineage(rt, rec.uri)
    if as_json:
        emit_json({**rec.to_dict(), "lineage": graph, "lineage_note": missing})
        return
    console.print(
        f"[bold]Decision {rec.request_id}[/] (row {rec.row} of {rec.rows}) · endpoint "
        f"{rec.endpoint} · {fmt_time(rec.at)} UTC"
    )
    console.print(f"model: {rec.uri} (variant {rec.variant})")
    if rec.status != "ok":
        console.print(f"[red]answer: {rec.status}[/]: {escape(rec.error or '')}")
    else:
        console.print(f"prediction: {escape(_prediction(rec))}")
    e = rec.explanation
    if e is not None:
        console.print(_explanation_table(e, rec.features))
        explained = f" for class {e['explained_class']}" if "explained_class" in e else ""
        total = e["base_value"] + sum(e["contributions"].values()) + e["other"]
        console.print(
            f"base value {e['base_value']:.4f} + contributions {total - e['base_value']:+.4f} "
            f"= output {e['output']:.4f} ({e['output_space']}{explained})"
        )
    shown = set(e["contributions"]) if e is not None else set()
    rest = [[k, escape(fmt_value(v))] for k, v in rec.features.items() if k not in shown]
    if rest:
        table, _ = fit_table(
            ["feature", Col("value", wrap=True)], rest, title="other inputs", title_justify="left"
        )
        console.print(table)
    if graph is None:
        console.print(f"lineage: {escape(missing or '-')}")
        return
    nodes = [n for n in graph["nodes"] if n["key"] != graph["root"]]
    order = list(_LINEAGE_KINDS)
    picked = sorted(
        (n for n in nodes if n["kind"] in _LINEAGE_KINDS), key=lambda n: order.index(n["kind"])
    )
    table, _ = fit_table(
        ["", Col("upstream of " + rec.uri, wrap=True)],
        [[_LINEAGE_KINDS[n["kind"]], escape(n["label"] or n["ref"])] for n in picked],
        title="lineage",
        title_justify="left",
    )
    console.print(table if picked else f"lineage: nothing recorded upstream of {rec.uri}")


def list_(
    endpoint: Annotated[str, typer.Option("--endpoint", help="The endpoint.")],
    since: Annotated[str, typer.Option(help='How far back: a duration ("1h", "7d", "2w").')] = "7d",
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Decisions to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """An endpoint's recorded decisions, newest first."""
    import time

    from milepost.monitoring import Window

    window = Window.parse(since)
    if window.duration_ms is None:
        raise InvalidInput(f"--since {since!r} must be a duration.", hint='e.g. "1h" or "7d".')
    since_ms = int(time.time() * 1000) - window.duration_ms
    found = runtime().serving.decisions(endpoint, since_ms=since_ms, limit=limit)
    if as_json:
        emit_json([d.to_dict() for d in found])
        return
    rows = []
    for d in found:
        top = next(iter((d.explanation or {}).get("contributions", {}).items()), None)
        rows.append(
            [
                fmt_time(d.at),
                d.request_id + (f"/{d.row}" if d.rows > 1 else ""),
                f"v{d.version}",
                escape(_prediction(d)),
                escape(f"{top[0]} {top[1]:+.3f}") if top else "-",
            ]
        )
    table, _ = fit_table(
        ["when (UTC)", "request", "model", Col("prediction", wrap=True), "top reason"],
        rows,
        optional=1,
        title=f"{len(found)} decision(s) of {endpoint} in the last {window.text}",
        title_justify="left",
    )
    console.print(table)


app.command()(show)
app.command("list")(list_)
