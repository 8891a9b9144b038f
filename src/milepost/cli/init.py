"""`milepost init [DIR]`: a new project with features, training, a pipeline, a policy,
tests and CI workflows (see :mod:`milepost.project.scaffold`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from milepost.cli._output import console


def init(
    directory: Annotated[
        Path, typer.Argument(help="Where the project goes (created if missing).")
    ] = Path(),
    template: Annotated[
        str,
        typer.Option(help="classification (churn) or regression (next month's spend)."),
    ] = "classification",
    name: Annotated[
        str | None,
        typer.Option(
            help="The project's name: its package (with '-' as '_'), model and endpoint "
            "(default: the directory's name)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files of the project that exist.")
    ] = False,
) -> None:
    """Create a Milepost project: features, training, a release pipeline, a policy,
    sample data, tests and CI for GitHub and GitLab that run `milepost check` commands.

    Nothing is written when any of its files exists, unless --force.
    """
    from milepost.project.scaffold import next_steps, scaffold

    written = scaffold(directory, template=template, name=name, force=force)
    console.print(f"Created a {template} project in {escape(str(directory))}:")
    for path in written:
        console.print(f"  {escape(str(path.relative_to(directory)))}", highlight=False)
    console.print("Next steps (what its pull-request CI runs):")
    for command in next_steps(directory):
        console.print(f"  {escape(command)}", highlight=False, soft_wrap=True)
    console.print(
        "Then see its README.md: the main branch releases through the team's `milepost "
        "server`, and the server needs a one-time setup.",
        soft_wrap=True,
    )
