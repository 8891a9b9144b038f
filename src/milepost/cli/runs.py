"""`milepost runs ...`"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from milepost.cli._output import (
    STATUS_STYLE,
    Col,
    console,
    emit_json,
    fit_table,
    fmt_time,
    fmt_value,
)
from milepost.cli._runtime import runtime

if TYPE_CHECKING:
    from milepost.tracking.models import Run

app = typer.Typer(help="List, show, compare and manage runs.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RunIdArg = Annotated[
    str, typer.Argument(help="Run id, or its first characters (as `runs list` prints them).")
]


def _status(run: Run) -> str:
    style = STATUS_STYLE.get(run.status.value, "")
    return f"[{style}]{run.status.value}[/]" if style else run.status.value


@app.command("list")
def list_(
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Name or id; repeatable.")
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="e.g. \"metrics.acc > 0.9 AND params.model = 'gbm'\""),
    ] = None,
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", "-o", help="e.g. 'metrics.acc DESC'.")
    ] = None,
    max_results: Annotated[int, typer.Option("--max", min=1, max=50_000, help="Page size.")] = 50,
    page_token: Annotated[str | None, typer.Option(help="Token printed under a page.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    page = runtime().tracking.search_runs(
        experiment or None,
        filter=filter_,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
    )
    if as_json:
        emit_json({"runs": [r.to_dict() for r in page], "next_page_token": page.token})
        return
    wanted = [t.split()[0].partition(".")[2] for t in order_by or [] if t.startswith("metrics.")]
    present = sorted({k for r in page for k in r.metrics})
    metric_keys = [k for k in wanted if k in present]
    metric_keys += [k for k in present if k not in metric_keys]
    names = _experiment_names()
    experiments = {names.get(r.experiment_id, str(r.experiment_id)) for r in page}
    one = len(experiments) == 1  # then it goes above the table, not in every row
    rows = [
        [
            r.run_id[:12],
            r.name,
            *([] if one else [names.get(r.experiment_id, str(r.experiment_id))]),
            _status(r),
            fmt_time(r.start_time)[5:16],
            *(f"{r.metrics[k]:.4g}" if k in r.metrics else "" for k in metric_keys),
        ]
        for r in page
    ]
    metric_cols = [Col(k, justify="right") for k in metric_keys]
    ordered = 1 if wanted and metric_keys and metric_keys[0] == wanted[0] else 0
    table, hidden = fit_table(
        [
            "run id",
            Col("name", wrap=True),
            *([] if one else [Col("experiment", wrap=True)]),
            "status",
            "started (UTC)",
            *metric_cols,
        ],
        rows,
        optional=len(metric_cols) - ordered,  # the metric runs are ordered by stays
    )
    if one and page:
        console.print(f"experiment {experiments.pop()}")
    console.print(table)
    if hidden:
        console.print(
            f"{hidden} more metric(s): -o 'metrics.NAME DESC' shows NAME first; "
            "`runs show ID` shows all."
        )
    if page.token:
        console.print(f"More runs: --page-token {page.token}")


def _experiment_names() -> dict[int, str]:
    """Experiment id -> name, deleted experiments included (their runs stay readable)."""
    experiments = runtime().tracking.list_experiments(include_deleted=True)
    return {e.experiment_id: e.name for e in experiments}


def _resolve(run_id: str) -> Run:
    """A run by full id or unique prefix (as `runs list` prints 12 characters)."""
    tracking = runtime().tracking
    if len(run_id) == 32:
        return tracking.get_run(run_id)
    matches = tracking.search_runs(
        None, filter=f"run_id LIKE '{run_id.replace(chr(39), '')}%'", max_results=2
    )
    if len(matches) == 1:
        return tracking.get_run(matches[0].run_id)
    return tracking.get_run(run_id)  # raises NotFound with a hint


@app.command()
def show(run_id: RunIdArg, as_json: JsonOpt = False) -> None:
    """Show one run: attributes, params, metrics, tags, environment, artifacts."""
    tracking = runtime().tracking
    run = _resolve(run_id)
    artifacts = tracking.list_artifacts(run.run_id)
    env = tracking.get_environment(run.env_hash) if run.env_hash else None
    inputs = runtime().data.inputs_of_run(run.run_id)
    if as_json:
        data = run.to_dict()
        data["inputs"] = [i.to_dict() for i in inputs]
        data["artifacts"] = [a.to_dict() for a in artifacts]
        data["environment"] = env.to_dict() if env else None
        emit_json(data)
        return
    console.print(f"[bold]{run.name}[/]  {run.run_id}  {_status(run)}")
    console.print(
        f"experiment {_experiment_names().get(run.experiment_id, run.experiment_id)} · user "
        f"{run.user} · started {fmt_time(run.start_time)}"
        f" · ended {fmt_time(run.end_time)}"
        + (f" · parent {run.parent_run_id}" if run.parent_run_id else "")
    )
    if run.git_commit:
        console.print(
            f"git {run.git_commit[:12]}{' (dirty)' if run.git_dirty else ''} · source {run.source}"
        )
    if env:
        console.print(
            f"python {env.python_version} · {env.platform} · "
            f"{len(env.packages)} packages ({env.packages_hash[:12]})"
        )
    for title, values in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        if values:
            rows = [[k, fmt_value(v)] for k, v in values.items()]
            table, _ = fit_table(
                ["key", Col("value", wrap=True)], rows, title=title, title_justify="left"
            )
            console.print(table)
    if inputs:
        rows = [[i.ref, i.role, i.content_hash[:12]] for i in inputs]
        table, _ = fit_table(
            ["dataset", "role", "sha256"], rows, title="inputs", title_justify="left"
        )
        console.print(table)
    if artifacts:
        rows = [[a.path, f"{a.size:,}", a.digest[:12]] for a in artifacts]
        table, _ = fit_table(
            [Col("path", wrap=True), Col("size", justify="right"), "sha256"],
            rows,
            title="artifacts",
            title_justify="left",
        )
        console.print(table)
    if run.error:
        console.print("[red]error:[/]")
        console.print(run.error, markup=False)


@app.command()
def compare(
    run_ids: Annotated[
        list[str], typer.Argument(help="Two or more run ids (or their first characters).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Compare runs side by side; rows that differ are highlighted."""
    runs = [_resolve(r) for r in run_ids]
    rows: list[tuple[str, list[str]]] = []
    for kind in ("params", "metrics", "tags"):
        keys = sorted({k for r in runs for k in getattr(r, kind)})
        for k in keys:
            rows.append((f"{kind}.{k}", [fmt_value(getattr(r, kind).get(k, "")) for r in runs]))
    if as_json:
        emit_json(
            {"runs": [r.run_id for r in runs], "rows": {name: values for name, values in rows}}
        )
        return
    cells = [["status", *(_status(r) for r in runs)]] + [[n, *v] for n, v in rows]
    styles = [None] + ["bold yellow" if len(set(v)) > 1 else None for _, v in rows]
    table, _ = fit_table(
        ["", *(Col(f"{r.name}\n{r.run_id[:12]}", wrap=True) for r in runs)], cells, styles=styles
    )
    console.print(table)


@app.command()
def delete(run_id: RunIdArg) -> None:
    """Delete a run (soft; `runs restore` undoes it)."""
    run = _resolve(run_id)
    runtime().tracking.delete_run(run.run_id)
    console.print(f"Deleted run {run.run_id}.")


@app.command()
def restore(
    run_id: Annotated[str, typer.Argument(help="The deleted run's full id (32 characters).")],
) -> None:
    """Restore a deleted run."""
    runtime().tracking.restore_run(run_id)
    console.print(f"Restored run {run_id}.")


@app.command()
def download(
    run_id: RunIdArg,
    path: Annotated[str, typer.Option(help="Artifact path or directory; default all.")] = "",
    dst: Annotated[Path, typer.Option(help="Local directory.")] = Path("."),
) -> None:
    """Download a run's artifacts."""
    run = _resolve(run_id)
    out = runtime().tracking.download_artifacts(run.run_id, path, dst)
    console.print(f"Downloaded to {out}.")


@app.command()
def reap(
    experiment: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-e", help="Name or id; repeatable (default: all)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the runs that would be marked.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Mark KILLED the RUNNING runs whose process is gone (audited).

    A run is stale when its process on this host no longer exists, or when another host
    has sent no heartbeat for stale_run_timeout seconds. Reading runs never marks them;
    this command (or the scheduler) does."""
    stale = runtime().tracking.reap_stale_runs(experiment or None, dry_run=dry_run)
    if as_json:
        emit_json({"dry_run": dry_run, "runs": [s.to_dict() for s in stale]})
        return
    if not stale:
        console.print("No stale runs.")
        return
    table, _ = fit_table(["run id", Col("why", wrap=True)], [[s.run_id, s.reason] for s in stale])
    console.print(table)
    verb = "would be marked" if dry_run else "marked"
    console.print(f"{len(stale)} run(s) {verb} KILLED.")
