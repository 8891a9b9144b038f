"""`milepost models ...`"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cards.models import CARD_FIELDS
from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time, fmt_value
from milepost.cli._params import MAX_INT64, ModelNameArg, ReasonOpt, VersionArg
from milepost.cli._runtime import runtime
from milepost.cli.promotions import approve, gates_table, print_request, reject
from milepost.cli.promotions import list_ as list_requests
from milepost.errors import GateFailed, InvalidInput

app = typer.Typer(help="The model registry and the promotion workflow.", no_args_is_help=True)
trust_app = typer.Typer(
    help="Types every loader trusts in model files beyond the built-in allow-list "
    "(changing the list needs the approver or admin role; every change is audited).",
    no_args_is_help=True,
)
app.add_typer(trust_app, name="trust")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
STAGE_STYLE = {"Production": "green", "Staging": "cyan", "Archived": "dim", "None": ""}


def _stage(stage: str) -> str:
    style = STAGE_STYLE.get(stage, "")
    return f"[{style}]{stage}[/]" if style else stage


@app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Argument(help="A registered model: list its versions instead.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List registered models with their Production version and aliases, or NAME's
    versions."""
    if name is not None:
        versions(name, as_json)
        return
    models = runtime().models.list_models()
    if as_json:
        emit_json([m.to_dict() for m in models])
        return
    rows = [
        [
            m.name,
            str(m.latest_version or "-"),
            str(m.production_version or "-"),
            ", ".join(map(str, m.stages.get("Staging", []))) or "-",
            "yes" if m.has_policy else "no",
            ", ".join(f"{a}->{v}" for a, v in m.aliases.items()) or "-",
            fmt_time(m.updated_at),
        ]
        for m in models
    ]
    table, _ = fit_table(
        [
            Col("model", wrap=True),
            "latest",
            "production",
            "staging",
            "policy",
            Col("aliases", wrap=True),
            "updated (UTC)",
        ],
        rows,
        optional=1,
    )
    console.print(table)


#: Metrics a version row shows first, when the run logged them.
_HEADLINE_METRICS = ("roc_auc", "pr_auc", "f1", "rmse", "mae", "r2", "accuracy")


def _headline(metrics: dict[str, float], n: int = 2) -> str:
    keys = [k for k in _HEADLINE_METRICS if k in metrics] or sorted(metrics)
    return ", ".join(
        f"{k} {metrics[k]:.3f}" if isinstance(metrics[k], float) else f"{k} {metrics[k]}"
        for k in keys[:n]
    )


def _versions_table(name: str) -> Table:
    versions = runtime().models.versions(name)
    rows = [
        [
            str(v.version),
            _stage(v.stage),
            (v.run_id or "-")[:12],
            fmt_time(v.created_at),
            _headline(v.metrics),
            ", ".join(v.aliases) or "-",
            v.author,
            v.flavor + (" + onnx" if v.has_onnx else ""),
        ]
        for v in versions
    ]
    table, _ = fit_table(
        [
            "version",
            "stage",
            "run",
            "created (UTC)",
            Col("metrics", wrap=True),
            Col("aliases", wrap=True),
            "author",
            "flavor",
        ],
        rows,
        optional=3,
        title=f"{name} versions",
        title_justify="left",
    )
    return table


@app.command(hidden=True)  # the old name of `models list NAME`, for one release
def versions(name: ModelNameArg, as_json: JsonOpt = False) -> None:
    """List a model's versions."""
    if as_json:
        emit_json([v.to_dict() for v in runtime().models.versions(name)])
        return
    console.print(_versions_table(name))


@app.command()
def show(
    name: ModelNameArg,
    version: Annotated[
        int | None, typer.Argument(min=1, max=MAX_INT64, help="A version; default: the model.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model (versions, aliases, policy) or one version in full."""
    rt = runtime()
    if version is not None:
        v = rt.models.get_version(name, version)
        evals = rt.evaluation.for_version(v, limit=5)
        if as_json:
            emit_json({**v.to_dict(), "evaluations": [e.to_dict() for e in evals]})
            return
        console.print(
            f"[bold]{v.uri}[/] {_stage(v.stage)}"
            + (f" · aliases {', '.join(v.aliases)}" if v.aliases else "")
        )
        console.print(
            f"flavor {v.flavor} · run {v.run_id} · author {v.author} · "
            f"created {fmt_time(v.created_at)} · code {(v.code_version or '-')[:12]}"
        )
        if v.onnx:
            console.print(f"onnx: {v.onnx['reason']}")
        console.print(
            "reference profile: stored (drift monitors compare with it)"
            if v.has_profile
            else "reference profile: none (log the model with training_data= to store one)"
        )
        if v.signature:
            console.print(
                "inputs: "
                + ", ".join(
                    f"{c.name}:{c.type}{'?' if c.nullable else ''}" for c in v.signature.inputs
                )
            )
        if v.datasets:
            console.print("datasets: " + ", ".join(f"{d['ref']} ({d['role']})" for d in v.datasets))
        if v.trusted_types:
            console.print(
                "types declared by the author (information only; loading trusts what the "
                "loading side names): " + ", ".join(v.trusted_types),
                markup=False,
            )
        if v.metrics:
            console.print(
                "metrics: " + ", ".join(f"{k}={fmt_value(x)}" for k, x in v.metrics.items())
            )
        for e in evals:
            console.print(
                f"evaluation {e.eval_id[:12]} on {e.dataset_ref or 'a DataFrame'}: "
                + ", ".join(f"{k}={fmt_value(x)}" for k, x in e.metrics.items() if x is not None)
            )
        return
    m = rt.models.get_model(name)
    policy = rt.promotion.get_policy(name)
    if as_json:
        emit_json({**m.to_dict(), "policy": policy.to_dict()})
        return
    tracks = {e: rt.serving.get(e)[0].track for e in rt.serving.list_endpoints()}
    trackers = [e for e, t in tracks.items() if t is not None and t.model == name]
    console.print(
        f"[bold]{m.name}[/] · latest {m.latest_version or '- (no versions yet)'} · Production "
        f"{m.production_version or '-'}"
        + (f" (served by endpoint {trackers[0]}, which tracks it)" if trackers else "")
        + (f" · {m.description}" if m.description else "")
    )
    console.print(_versions_table(name))
    if policy.empty:
        console.print(
            "policy: none (every legal transition is ungated); set one with "
            f"`milepost models policy {name} --set policy.yaml`"
        )
    else:
        console.print("policy:")
        console.print(policy.to_yaml(), markup=False)


@app.command()
def promote(
    name: ModelNameArg,
    version: VersionArg,
    to: Annotated[str, typer.Option("--to", help="Staging or Production.")],
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the history).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the gates of the model's policy and promote, wait for approval, or refuse."""
    try:
        req = runtime().promotion.promote(name, version, to, reason=reason)
    except GateFailed as exc:
        from milepost.promotion.gates import GateResult

        gates = [GateResult(**g) for g in (exc.details or {}).get("gates", [])]
        if as_json:
            emit_json({"status": "refused", **(exc.details or {})})
        elif gates:
            console.print(gates_table(gates))
        raise
    if as_json:
        emit_json(req.to_dict())
    else:
        print_request(req)


# the old names of `milepost promotions approve|reject|list`, for one release
app.command("approve", hidden=True)(approve)
app.command("reject", hidden=True)(reject)
app.command("requests", hidden=True)(list_requests)


@app.command()
def archive(name: ModelNameArg, version: VersionArg, reason: ReasonOpt = None) -> None:
    """Archive a version (always allowed; audited)."""
    runtime().models.archive(name, version, reason=reason)
    console.print(f"{name} v{version} archived.")


@app.command()
def alias(
    name: ModelNameArg,
    alias: Annotated[str, typer.Argument(help="Alias name, e.g. champion.")],
    version: Annotated[
        int | None, typer.Argument(min=1, max=MAX_INT64, help="Version to point at.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
) -> None:
    """Point an alias (champion, challenger, ...) at a version, or remove it."""
    models = runtime().models
    if delete:
        models.delete_alias(name, alias)
        console.print(f"Removed {name}@{alias}.")
        return
    if version is None:
        raise InvalidInput("Give the version the alias should point at, or --delete.")
    old = models.set_alias(name, alias, version)
    console.print(f"{name}@{alias} -> v{version}" + (f" (was v{old})" if old else ""))


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"--at {text!r} is not an ISO time such as 2026-11-27T20:00:00Z."
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def history(
    name: ModelNameArg,
    at: Annotated[
        str | None,
        typer.Option(help="Which version was in Production at this time (ISO, UTC by default)?"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every stage change of a model: who, when, why, which request (and its gates)."""
    models = runtime().models
    if at is not None:
        version = models.production_at(name, _parse_time(at))
        if as_json:
            emit_json({"model": name, "at": at, "production_version": version})
        else:
            console.print(f"In Production at {at}: " + (f"v{version}" if version else "none"))
        return
    events = models.history(name)
    if as_json:
        emit_json([e.to_dict() for e in events])
        return
    rows = [
        [
            fmt_time(e.at),
            str(e.version),
            e.from_stage,
            _stage(e.to_stage),
            e.actor,
            escape(e.reason or ""),
            (e.request_id or "-")[:12],
        ]
        for e in events
    ]
    table, _ = fit_table(
        ["when (UTC)", "version", "from", "to", "by", Col("reason", wrap=True), "request"],
        rows,
        optional=1,
    )
    console.print(table)


@app.command()
def evaluate(
    uri: Annotated[str, typer.Argument(help="models:/NAME/VERSION, /Production or @alias")],
    data: Annotated[str, typer.Option(help="Dataset version, e.g. churn.test@1.")],
    target: Annotated[str, typer.Option(help="The label column.")],
    task: Annotated[str | None, typer.Option(help="classification or regression")] = None,
    slice_: Annotated[
        list[str] | None, typer.Option("--slice", help="Break down by column.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a model version on a dataset version (stored and linked to both)."""
    if task not in (None, "classification", "regression"):
        raise InvalidInput(f"--task {task!r}: use classification or regression.")
    result = runtime().evaluation.evaluate(
        uri,
        data,
        target=target,
        task=task,  # type: ignore[arg-type]
        slices=slice_ or [],
    )
    if as_json:
        emit_json(result.to_dict())
        return
    console.print(
        f"[bold]{result.model_uri}[/] on {result.dataset_ref} ({result.num_rows:,} rows, "
        f"{result.task})"
    )
    table, _ = fit_table(
        ["metric", Col("value", justify="right")],
        [[k, fmt_value(x) if x is not None else "-"] for k, x in result.metrics.items()],
    )
    console.print(table)
    for column, values in result.slices.items():
        keys = [k for k in next(iter(values.values())) if k != "n"]
        t = Table(column, "n", *keys, title=f"by {column}", title_justify="left")
        for value, m in values.items():
            t.add_row(
                value, str(m["n"]), *(fmt_value(m[k]) if m[k] is not None else "-" for k in keys)
            )
        console.print(t)


@app.command()
def policy(
    name: ModelNameArg,
    set_: Annotated[Path | None, typer.Option("--set", help="A policy YAML file.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the policy.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show, set or clear a model's promotion policy."""
    promotion = runtime().promotion
    if set_ is not None and clear:
        raise InvalidInput("Use either --set or --clear.")
    if clear:
        promotion.set_policy(name, None)
        console.print(f"Policy of {name} cleared: transitions are ungated.")
        return
    current = promotion.set_policy(name, set_) if set_ is not None else promotion.get_policy(name)
    data: dict[str, Any] = current.to_dict()
    if as_json:
        emit_json(data)
    else:
        console.print(current.to_yaml() if not current.empty else "no policy", markup=False)


@trust_app.command("list")
def trust_list(as_json: JsonOpt = False) -> None:
    """List the approver-set trusted types: who added each, when and why."""
    records = runtime().models.list_trusted_types()
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        console.print(
            "No trusted types beyond the built-in allow-list. An approver adds one with "
            "`milepost models trust add TYPE --reason '...'`."
        )
        return
    rows = [
        [
            r.type_name,
            "yes" if r.audited else "[red]no: ignored by loaders[/]",
            escape(r.reason),
            r.added_by,
            fmt_time(r.added_at),
        ]
        for r in records
    ]
    table, _ = fit_table(
        ["type", "audited", Col("reason", wrap=True), "added by", "added (UTC)"], rows, optional=2
    )
    console.print(table)


@trust_app.command("add")
def trust_add(
    type_name: Annotated[str, typer.Argument(help="The dotted type name, e.g. mypkg.Doubler.")],
    reason: Annotated[str, typer.Option(help="Why it is safe to trust (audited).")],
) -> None:
    """Trust a type in model files for every loader (needs the approver or admin role)."""
    record = runtime().models.add_trusted_type(type_name, reason=reason)
    console.print(f"Every loader now trusts {record.type_name} (added by {record.added_by}).")


@trust_app.command("remove")
def trust_remove(
    type_name: Annotated[str, typer.Argument(help="The dotted type name.")],
    reason: Annotated[str | None, typer.Option(help="Why (audited).")] = None,
) -> None:
    """Stop trusting a type (needs the approver or admin role)."""
    record = runtime().models.remove_trusted_type(type_name, reason=reason)
    console.print(
        f"{record.type_name} is no longer trusted; models holding it load only where the "
        "loading side names it."
    )


class CardFormat(enum.StrEnum):
    """The formats `models card` writes."""

    markdown = "markdown"
    html = "html"
    json = "json"
    cyclonedx = "cyclonedx"


@app.command()
def card(
    name: ModelNameArg,
    version: VersionArg,
    format_: Annotated[
        CardFormat,
        typer.Option(
            "--format",
            help="markdown (the default, printed), html (one self-contained page), json, "
            "or cyclonedx (a CycloneDX 1.6 ML-BOM, validated before it is written).",
        ),
    ] = CardFormat.markdown,
    out: Annotated[
        Path | None, typer.Option(help="Write the card to this file instead of printing it.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """The model card of a version: what the store knows (details, data, metrics per
    slice, fairness, gates, lineage, deployments) plus the sections people wrote;
    missing sections are flagged with the command that fills them."""
    from milepost.cards import render_card, write_card

    model_card = runtime().cards.card(name, version)
    fmt = "json" if as_json else str(format_)
    if out is not None:
        path = write_card(model_card, out, format=fmt)
        missing = len(model_card.missing)
        console.print(
            f"Wrote the {fmt} card of {model_card.uri} to {escape(str(path))}"
            + (f" ({missing} written sections missing)." if missing else ".")
        )
        return
    typer.echo(render_card(model_card, fmt), nl=False)


@app.command("card-set")
def card_set(
    name: ModelNameArg,
    field: Annotated[
        str | None,
        typer.Argument(help="The section: " + ", ".join(CARD_FIELDS) + "."),
    ] = None,
    text: Annotated[str | None, typer.Argument(help="What the section says.")] = None,
    version: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_INT64, help="Write it for this version only (overrides the model's)."
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(help="A YAML file of `field: text` lines: write several sections at once."),
    ] = None,
    reason: ReasonOpt = None,
) -> None:
    """Write sections of a model's card (for every version, or --version N only);
    each change is audited."""
    cards = runtime().cards
    if from_file is not None:
        if field is not None or text is not None:
            raise InvalidInput("Give FIELD TEXT or --from-file, not both.")
        written = cards.set_fields_from_file(name, from_file, version=version, reason=reason)
    elif field is None or text is None:
        raise InvalidInput(
            "Give a FIELD and its TEXT, or --from-file card.yaml.",
            hint=f"Fields: {', '.join(CARD_FIELDS)}.",
        )
    else:
        written = [cards.set_field(name, field, text, version=version, reason=reason)]
    scope = f"{name} v{version}" if version else f"{name} (every version)"
    console.print(f"Wrote {', '.join(w.field for w in written)} of the card of {scope}.")


@app.command("card-clear")
def card_clear(
    name: ModelNameArg,
    field: Annotated[str, typer.Argument(help="The section to remove.")],
    version: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_INT64, help="Remove this version's override only."),
    ] = None,
    reason: ReasonOpt = None,
) -> None:
    """Remove a written section of a model's card (audited); it shows as missing again,
    or as the model's text when a version's override is removed."""
    runtime().cards.clear_field(name, field, version=version, reason=reason)
    scope = f"{name} v{version}" if version else name
    console.print(f"Cleared {field} of the card of {scope}.")
