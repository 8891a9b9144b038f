"""`milepost audit ...`"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from milepost._context import get_runtime
from milepost.cli._output import console, emit_json, fmt_time

app = typer.Typer(help="Read and verify the tamper-evident audit trail.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("list")
def list_(
    object_type: Annotated[str | None, typer.Option(help="run, experiment, ...")] = None,
    object_id: Annotated[str | None, typer.Option()] = None,
    actor: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option(help="e.g. 'run.*'")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Events to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List audit events, newest first."""
    events = get_runtime().audit.list(
        object_type=object_type, object_id=object_id, actor=actor, action=action, limit=limit
    )
    if as_json:
        emit_json([e.to_dict() for e in events])
        return
    table = Table("seq", "time (UTC)", "actor", "action", "object", "reason", "hash")
    for e in events:
        table.add_row(
            str(e.seq),
            fmt_time(e.time),
            e.actor,
            e.action,
            f"{e.object_type} {e.object_id}",
            e.reason or "",
            e.hash[:12],
        )
    console.print(table)


@app.command()
def verify(
    anchor: Annotated[
        str | None, typer.Option(help="SEQ:HASH printed earlier by `milepost audit head`.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the chain; exit 1 and name every edited, deleted or reordered event."""
    report = get_runtime().audit.verify(anchor=anchor)
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "head": {"seq": report.head_seq, "hash": report.head_hash},
                "problems": [
                    {"kind": p.kind, "seq": p.seq, "message": p.message} for p in report.problems
                ],
            }
        )
    elif report.ok:
        console.print(
            f"[green]OK[/]: {report.checked} events, chain intact "
            f"(head {report.head_seq}:{report.head_hash[:12]}...)."
        )
    else:
        console.print(
            f"[red]TAMPERED[/]: {len(report.problems)} problem(s) in {report.checked} events:"
        )
        for p in report.problems:
            console.print(f"  - [{p.kind}] {p.message}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def head() -> None:
    """Print SEQ:HASH of the newest event; keep it elsewhere to anchor later checks."""
    seq, digest = get_runtime().audit.head()
    typer.echo(f"{seq}:{digest}")
