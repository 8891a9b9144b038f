"""Rendering helpers shared by the commands: tables, JSON and times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Write JSON to stdout (for ``--json``)."""
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


def fmt_time(ms: int | None) -> str:
    """A compact UTC timestamp."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_value(value: Any) -> str:
    """Numbers with up to 6 significant digits, others as text."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


STATUS_STYLE = {
    "RUNNING": "cyan",
    "FINISHED": "green",
    "FAILED": "red",
    "KILLED": "yellow",
}
