"""`milepost fairness ...`: audit a model version across sensitive features, list audits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._runtime import runtime

if TYPE_CHECKING:
    from milepost.evaluation.fairness import FairnessResult

app = typer.Typer(
    help="Fairness audits: how a model's decisions differ across groups (fairlearn's "
    "demographic parity and equalized odds), stored with the model version.",
    no_args_is_help=True,
)

UriArg = Annotated[str, typer.Argument(help="models:/NAME/VERSION, /Production or @alias")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

_MEASURES = (
    ("demographic_parity_ratio", "DP ratio"),
    ("demographic_parity_difference", "DP difference"),
    ("equalized_odds_ratio", "EO ratio"),
    ("equalized_odds_difference", "EO difference"),
)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _why(group: dict[str, Any], minimum: int) -> str:
    """Why a group is unreliable, in a few words."""
    n, positives = int(group["count"]), int(group["positives"])
    reasons = []
    if n < minimum:
        reasons.append(f"{n} rows")
    if positives < minimum:
        reasons.append(f"{positives} positives")
    if n - positives < minimum:
        reasons.append(f"{n - positives} negatives")
    return "unreliable: " + ", ".join(reasons) + f" < {minimum}" if reasons else ""


def _render(result: FairnessResult) -> None:
    data = result.dataset_ref or "a DataFrame"
    console.print(
        f"[bold]{result.model_uri}[/] on {data} ({result.num_rows:,} rows, target "
        f"{result.target}, positive label {result.positive_label!r}, threshold "
        f"{result.threshold:g}) audit {result.audit_id[:12]}"
    )
    rows = [
        [feature, *(_num(values.get(key)) for key, _ in _MEASURES)]
        for feature, values in result.summary.items()
    ]
    headers: list[Col | str] = ["feature", *(Col(label, justify="right") for _, label in _MEASURES)]
    console.print(fit_table(headers, rows)[0])
    rows = [
        [
            str(g["feature"]),
            str(g["group"]),
            f"{g['count']:,}",
            f"{g['positives']:,}",
            _num(g["selection_rate"]),
            _num(g["tpr"]),
            _num(g["fpr"]),
            _num(g["accuracy"]),
            _why(g, result.min_group_size) if g["unreliable"] else "",
        ]
        for g in result.groups
    ]
    headers = [
        Col("feature"),
        Col("group"),
        Col("n", justify="right"),
        Col("positives", justify="right"),
        Col("selection", justify="right"),
        Col("TPR", justify="right"),
        Col("FPR", justify="right"),
        Col("accuracy", justify="right"),
        Col("flag", wrap=True),
    ]
    styles = ["yellow" if g["unreliable"] else None for g in result.groups]
    console.print(fit_table(headers, rows, styles=styles)[0])
    if result.unreliable_groups:
        console.print(
            f"{len(result.unreliable_groups)} group(s) flagged unreliable (fewer than "
            f"{result.min_group_size} rows, positives or negatives): their rates are noisy; "
            "the summary still counts them (fairlearn's definitions over every group)."
        )


@app.command()
def audit(
    uri: UriArg,
    data: Annotated[str, typer.Option(help="Dataset version, e.g. churn.test@1.")],
    target: Annotated[str, typer.Option(help="The label column.")],
    sensitive: Annotated[
        list[str], typer.Option(help="A sensitive column to audit (repeat for more).")
    ],
    min_group_size: Annotated[
        int,
        typer.Option(min=1, help="Fewer rows, positives or negatives flag a group unreliable."),
    ] = 30,
    threshold: Annotated[
        float, typer.Option(min=0, max=1, help="Positive-class probability threshold.")
    ] = 0.5,
    positive_label: Annotated[
        str | None,
        typer.Option(help="The positive label (default: the model's second class)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit a model version's fairness on a dataset version (stored and audited)."""
    result = runtime().evaluation.audit_fairness(
        uri,
        data,
        target=target,
        sensitive_features=sensitive,
        min_group_size=min_group_size,
        threshold=threshold,
        positive_label=positive_label,
    )
    if as_json:
        emit_json(result.to_dict())
        return
    _render(result)


@app.command("list")
def list_(
    uri: UriArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """A model version's fairness audits, newest first."""
    audits = runtime().evaluation.fairness_for_version(uri, limit=limit)
    if as_json:
        emit_json([a.to_dict() for a in audits])
        return
    if not audits:
        console.print(f"No fairness audits of {uri} yet: `milepost fairness audit {uri} ...`.")
        return
    rows = [
        [
            a.audit_id[:12],
            fmt_time(a.created_at),
            a.dataset_ref or "a DataFrame",
            feature,
            _num(values.get("demographic_parity_ratio")),
            _num(values.get("equalized_odds_difference")),
            str(sum(1 for g in a.unreliable_groups if g.startswith(f"{feature}="))),
        ]
        for a in audits
        for feature, values in a.summary.items()
    ]
    headers = [
        Col("audit"),
        Col("when (UTC)"),
        Col("data"),
        Col("feature"),
        Col("DP ratio", justify="right"),
        Col("EO difference", justify="right"),
        Col("unreliable", justify="right"),
    ]
    console.print(fit_table(headers, rows)[0])


@app.command()
def show(
    audit_id: Annotated[str, typer.Argument(help="The audit id (`milepost fairness list`).")],
    as_json: JsonOpt = False,
) -> None:
    """One stored fairness audit with its per-group table."""
    result = runtime().evaluation.get_fairness_audit(audit_id)
    if as_json:
        emit_json(result.to_dict())
        return
    _render(result)
