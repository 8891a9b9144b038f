"""`milepost audit ...`"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from milepost.cli._output import Col, console, emit_json, err_console, fit_table, fmt_time
from milepost.cli._params import when_ms
from milepost.cli._runtime import runtime

app = typer.Typer(help="Read and verify the tamper-evident audit trail.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TypeOpt = Annotated[str | None, typer.Option(help="run, experiment, model, endpoint, ...")]
ObjectOpt = Annotated[
    str | None, typer.Option(help="One object: a run id, experiment name, model, ...")
]
ActorOpt = Annotated[str | None, typer.Option(help="Only events by this user.")]
ActionOpt = Annotated[str | None, typer.Option(help="e.g. 'run.*'")]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="From this time: ISO (2026-11-30, 2026-11-30T09:00 UTC) or ago (7d, 2h)."),
]
UntilOpt = Annotated[str | None, typer.Option(help="Before this time (same forms as --since).")]


@app.command("list")
def list_(
    object_type: TypeOpt = None,
    object_id: ObjectOpt = None,
    actor: ActorOpt = None,
    action: ActionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Events to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List audit events, newest first (filter by object, actor, action and time)."""
    events = runtime().audit.list(
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        action=action,
        since_ms=when_ms(since, "--since"),
        until_ms=when_ms(until, "--until"),
        limit=limit,
    )
    if as_json:
        emit_json([e.to_dict() for e in events])
        return
    rows = [
        [
            str(e.seq),
            fmt_time(e.time).replace(" ", "\n"),  # date over time: the column is narrow
            e.actor,
            e.action,
            f"{e.object_type}\n{e.object_id[:12] if e.object_type == 'run' else e.object_id}",
            e.reason or "",
            e.hash[:12],
        ]
        for e in events
    ]
    columns: list[Col | str] = [
        Col("seq", justify="right"),
        "time (UTC)",
        "actor",
        "action",
        "object",
        Col("reason", wrap=True),
        "hash",
    ]
    table, hidden = fit_table(columns, rows, optional=1)
    console.print(table)
    if hidden:
        console.print("(hashes: a wider terminal, --json or `milepost audit verify`)")


@app.command()
def verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            "--anchor",
            metavar="HASH",
            help="A head kept elsewhere (`milepost audit head`): SEQ:HASH or the hash alone. "
            "Fails if the chain no longer has it or the head moved back before it.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the chain and the current state against it; exit 1 naming every problem.

    Finds edited, deleted, reordered and forged events, stages, aliases, endpoint traffic,
    roles and promotion requests changed behind the trail's back, and removed database
    guards.
    """
    report = runtime().audit.verify(expect_head=expect_head)
    if as_json:
        emit_json(report.to_dict())
    elif report.ok:
        console.print(
            f"[green]OK[/]: {report.checked} events, chain intact and matching the current "
            f"state (head {report.head_seq}:{report.head_hash[:12]}...)."
        )
    else:
        console.print(
            f"[red]TAMPERED[/]: {len(report.problems)} problem(s) in {report.checked} events:"
        )
        for p in report.problems:
            console.print(f"  - [{p.kind}] {p.message}", markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def head(as_json: JsonOpt = False) -> None:
    """Print SEQ:HASH of the newest event; keep it elsewhere for `verify --expect-head`."""
    anchor = runtime().audit.head_anchor()
    if as_json:
        seq, digest = anchor.split(":")
        emit_json({"seq": int(seq), "hash": digest, "anchor": anchor})
        return
    typer.echo(anchor)


@app.command()
def export(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write (JSON lines); default: standard output."),
    ] = None,
    object_type: TypeOpt = None,
    object_id: ObjectOpt = None,
    actor: ActorOpt = None,
    action: ActionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Export events as JSON lines, oldest first, with their hashes.

    The file can be checked away from the store with `milepost audit verify-export`; the
    chain's head at export time is printed (to standard error with no --out) so it can be
    kept as an anchor.
    """
    summary = runtime().audit.export(
        sys.stdout if out is None else out,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        action=action,
        since_ms=when_ms(since, "--since"),
        until_ms=when_ms(until, "--until"),
    )
    span = f" (seq {summary.first_seq}..{summary.last_seq})" if summary.events else ""
    where = "" if out is None else f" to {out}"
    err_console.print(
        f"Exported {summary.events} event(s){span}{where}; head at export {summary.head}.",
        markup=False,
        highlight=False,
    )


@app.command("verify-export")
def verify_export(
    path: Annotated[Path, typer.Argument(help="A file written by `milepost audit export`.")],
    partial: Annotated[
        bool, typer.Option(help="A filtered export: gaps between events are expected.")
    ] = False,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head", metavar="HASH", help="SEQ:HASH (or a hash) the export must hold."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check an exported trail without the store: hashes, links, gaps; exit 1 on a problem."""
    from milepost.governance.audit import AuditService

    report = AuditService.verify_export(path, partial=partial, expect_head=expect_head)
    if as_json:
        emit_json(report.to_dict())
    elif report.ok:
        console.print(
            f"[green]OK[/]: {report.checked} exported events, each matching its hash"
            + ("" if partial else ", the chain complete from the first event")
            + "."
        )
    else:
        console.print(f"[red]TAMPERED[/]: {len(report.problems)} problem(s):")
        for p in report.problems:
            console.print(f"  - [{p.kind}] {p.message}", markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)
