"""`milepost check ...`: the project's checks, the same on a laptop and in CI.

project (definitions, policy, triggers, references; nothing runs), consistency (every
feature view's offline and online paths on the same entities and times), lint, types
and tests (the project's own ruff, mypy and pytest, run by this Python).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table

app = typer.Typer(
    help="Check your project: definitions, training-serving consistency, lint, types, "
    "tests (the steps its CI runs).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def project(as_json: JsonOpt = False) -> None:
    """Check milepost.toml's [project], the feature definitions, the policy, the triggers
    and the pipeline/train/sample_data references without running anything; exit 1 on
    any failure. With MILEPOST_URL set, also compare the server's policy with the file."""
    from milepost.project.check import check_project

    report = check_project()
    if as_json:
        emit_json(report.to_dict())
    else:
        rows = [
            [
                c.name,
                escape(c.target),
                "ok" if c.ok else "[red]FAIL[/]",
                escape(c.detail),
            ]
            for c in report.checks
        ]
        table, _ = fit_table(
            ["check", Col("target", wrap=True), "result", Col("detail", wrap=True)], rows
        )
        console.print(table)
        bad = len(report.failures)
        if bad:
            console.print(f"[red]{bad} of {len(report.checks)} checks failed.[/]", highlight=False)
        else:
            console.print(f"{report.root}: all {len(report.checks)} checks passed.", markup=False)
    if not report.ok:
        raise typer.Exit(1)
