"""The ``milepost`` command: parse, call a service, render. No business logic here.

Known errors (:class:`~milepost.errors.MilepostError`) print as one line with what to
do and exit 1; anything else is a bug and prints its traceback.
"""

from __future__ import annotations

import sys
import traceback

import click
import typer
from rich.markup import escape

from milepost.cli import audit, data, deploy, experiments, features, models, roles, runs, system
from milepost.cli._output import err_console
from milepost.errors import MilepostError

app = typer.Typer(
    name="milepost",
    help="Milepost: track, version, gate, deploy and monitor ML models in one system.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(system.info)
app.add_typer(system.db_app, name="db")
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(models.app, name="models")
app.add_typer(deploy.app, name="deploy")
app.command()(deploy.serve)
app.add_typer(roles.app, name="roles")
app.add_typer(audit.app, name="audit")


@app.command()
def demo(
    rows: int = typer.Option(5000, help="Customers in the generated dataset."),
) -> None:
    """Run the whole Milepost loop on the embedded default, explaining each step."""
    from milepost.demo.run import run_demo

    run_demo(rows=rows)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``milepost`` console script."""
    try:
        result = app(args=argv, standalone_mode=False)
    except MilepostError as exc:
        hint = f" {exc.hint}" if exc.hint else ""
        err_console.print(f"[red]Error[/] \\[{exc.code}]: {escape(exc.message + hint)}")
        sys.exit(1)
    except click.exceptions.Abort:
        err_console.print("Aborted.")
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception:  # a bug: show everything
        err_console.print("Internal error (please report it with this traceback):")
        traceback.print_exc()
        sys.exit(2)
    if isinstance(result, int) and result:
        sys.exit(result)
