"""`milepost experiments ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._runtime import runtime

app = typer.Typer(
    help="Create, list, rename, delete and restore experiments.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ExperimentArg = Annotated[str, typer.Argument(help="Experiment name or id.")]


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include deleted experiments.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List experiments."""
    experiments = runtime().tracking.list_experiments(include_deleted=all_)
    if as_json:
        emit_json([e.to_dict() for e in experiments])
        return
    rows = [
        [
            str(e.experiment_id),
            e.name,
            e.lifecycle_stage,
            e.created_by,
            fmt_time(e.created_at),
            e.description or "",
        ]
        for e in experiments
    ]
    columns: list[Col | str] = [
        Col("id", justify="right"),
        "name",
        "stage",
        "created by",
        Col("created (UTC)", wrap=True),
        Col("description", wrap=True),
    ]
    console.print(fit_table(columns, rows)[0])


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Name of the new experiment.")],
    description: Annotated[str | None, typer.Option(help="What the experiment is for.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an experiment."""
    e = runtime().tracking.create_experiment(name, description=description)
    if as_json:
        emit_json(e.to_dict())
    else:
        console.print(f"Created experiment {e.name!r} (id {e.experiment_id}).")


@app.command()
def rename(
    experiment: ExperimentArg,
    new_name: Annotated[str, typer.Argument(help="Its new name.")],
) -> None:
    """Rename an experiment (by name or id)."""
    e = runtime().tracking.rename_experiment(experiment, new_name)
    console.print(f"Experiment {e.experiment_id} is now {e.name!r}.")


@app.command()
def delete(
    experiment: ExperimentArg,
    reason: Annotated[str | None, typer.Option(help="Recorded in the audit trail.")] = None,
) -> None:
    """Delete an experiment (soft: its runs stay readable; restore undoes it)."""
    e = runtime().tracking.delete_experiment(experiment, reason=reason)
    console.print(f"Deleted experiment {e.name!r} (id {e.experiment_id}).")


@app.command()
def restore(experiment: ExperimentArg) -> None:
    """Restore a deleted experiment."""
    e = runtime().tracking.restore_experiment(experiment)
    console.print(f"Restored experiment {e.name!r} (id {e.experiment_id}).")
