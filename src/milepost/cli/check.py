"""`milepost check ...`: the project's checks, the same on a laptop and in CI.

project (definitions, policy, triggers, references; nothing runs), consistency (every
feature view's offline and online paths on the same entities and times), lint, types
and tests (the project's own ruff, mypy and pytest, run by this Python).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Check your project: definitions, training-serving consistency, lint, types, "
    "tests (the steps its CI runs).",
    no_args_is_help=True,
)
