"""`milepost triggers ...`: add, list, show, remove, enable, disable, fire, firings.

A trigger launches a pipeline on a cron schedule, on a monitor's drift or performance
alerts, or when a dataset or feature view has grown by N rows (see
:mod:`milepost.pipelines.triggers`); `milepost scheduler` evaluates them. Times print in
UTC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._runtime import runtime
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost.pipelines.scheduler import Lease
    from milepost.pipelines.triggers import Firing, Trigger

app = typer.Typer(
    help="Triggers: launch a pipeline on a schedule, a monitor's drift or performance "
    "alert, or new rows in a dataset or feature view (`milepost scheduler` runs them).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Trigger name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LaunchOpt = Annotated[
    str,
    typer.Option(
        help="subprocess: start `milepost pipelines run` detached and return; inline: run "
        "the pipeline here, to the end.",
    ),
]


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``--param k=v`` options as a mapping (InvalidInput for an item without ``=``)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(
                f"--param {item!r} is not NAME=VALUE.",
                hint="For example --param rows=1000 --param c=0.5.",
            )
        out[key.strip()] = value
    return out


def _firing_line(f: Firing) -> str:
    line = f"{f.trigger} fired ({f.cause}): {f.reason} -> run {f.run_id} {f.status}"
    return line + (f": {f.error}" if f.error else "")


def add(
    name: NameArg,
    pipeline: Annotated[str, typer.Option(help="The pipeline, as package.module:attr.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="NAME=VALUE for the pipeline; repeatable.")
    ] = None,
    schedule: Annotated[
        str | None, typer.Option(help='Cron in UTC ("0 3 * * *") or "every 10m".')
    ] = None,
    on_drift: Annotated[
        str | None, typer.Option(help="Fire on this monitor's drift alerts.")
    ] = None,
    on_performance: Annotated[
        str | None, typer.Option(help="Fire on this monitor's performance alerts.")
    ] = None,
    on_data: Annotated[
        str | None,
        typer.Option(help="Fire when this dataset or feature view has --min-rows new rows."),
    ] = None,
    min_rows: Annotated[
        int | None, typer.Option(min=1, max=2**63 - 1, help="New rows that fire --on-data.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a trigger: exactly one of --schedule, --on-drift, --on-performance, --on-data.
    The pipeline, its parameters and the cause are checked now, not when it fires."""
    t = runtime().triggers.add(
        name,
        pipeline,
        params=parse_params(param),
        schedule=schedule,
        on_drift=on_drift,
        on_performance=on_performance,
        on_data=on_data,
        min_rows=min_rows,
    )
    if as_json:
        emit_json(t.to_dict())
        return
    console.print(f"Added trigger {t.name}: {t.pipeline} on {t.description}.")


def _rows(triggers: list[Trigger], last: dict[str, Firing]) -> list[list[str]]:
    rows = []
    for t in triggers:
        f = last.get(t.name)
        params = " ".join(f"{k}={v}" for k, v in sorted(t.params.items())) or "-"
        rows.append(
            [
                t.name,
                t.kind if t.enabled else f"{t.kind} (disabled)",
                t.description,
                t.pipeline,
                params,
                fmt_time(f.fired_at) if f else "-",
                f"{f.status} ({f.run_id[:12]})" if f else "-",
            ]
        )
    return rows


def list_(as_json: JsonOpt = False) -> None:
    """Triggers: kind, cause, pipeline, last firing and its run's status; and which
    scheduler holds the lease."""
    rt = runtime()
    found = rt.triggers.list()
    last = {t.name: f for t in found for f in rt.triggers.firings(t.name, limit=1)}
    lease = rt.triggers.lease()
    if as_json:
        emit_json(
            {
                "triggers": [
                    {
                        **t.to_dict(),
                        "last_firing": last[t.name].to_dict() if t.name in last else None,
                    }
                    for t in found
                ],
                "scheduler": lease.to_dict() if lease else None,
            }
        )
        return
    if not found:
        console.print("No triggers. Add one with `milepost triggers add`.")
    else:
        cols: list[Col | str] = ["trigger", "kind", Col("cause", wrap=True), "pipeline"]
        table, _ = fit_table(
            [*cols, Col("params", wrap=True), "last fired (UTC)", "run"],
            _rows(found, last),
            optional=3,
        )
        console.print(table)
    console.print(_lease_line(lease, rt.triggers.clock()))


def _lease_line(lease: Lease | None, now_s: float) -> str:
    """Who holds the scheduler lease, in words."""
    if lease is None:
        return "No scheduler has run on this store. Start one with `milepost scheduler`."
    if lease.expires_at > now_s * 1000:
        return f"Scheduler {lease.holder} is active (lease until {fmt_time(lease.expires_at)} UTC)."
    if lease.expires_at == 0:
        return f"No scheduler is active (the last, {lease.holder}, stopped)."
    return (
        f"No scheduler is active (the last, {lease.holder}, let its lease lapse at "
        f"{fmt_time(lease.expires_at)} UTC)."
    )


def show(name: NameArg, as_json: JsonOpt = False) -> None:
    """A trigger's definition, its cursor and recent firings."""
    rt = runtime()
    t = rt.triggers.get(name)
    recent = rt.triggers.firings(name, limit=10)
    if as_json:
        emit_json({"trigger": t.to_dict(), "firings": [f.to_dict() for f in recent]})
        return
    console.print(f"Trigger {t.name} ({'enabled' if t.enabled else 'disabled'}): {t.pipeline}")
    console.print(f"  on {t.description}")
    if t.params:
        console.print("  params " + " ".join(f"{k}={v}" for k, v in sorted(t.params.items())))
    console.print(f"  created by {t.created_by} at {fmt_time(t.created_at)} UTC; state {t.state}")
    for f in recent:
        console.print(f"  {fmt_time(f.fired_at)} {_firing_line(f)}", highlight=False)


def remove(
    name: NameArg,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the audit trail).")] = None,
) -> None:
    """Remove a trigger and its firings (audited)."""
    runtime().triggers.remove(name, reason=reason)
    console.print(f"Removed trigger {name}.")


def enable(name: NameArg) -> None:
    """Evaluate a trigger again (what happened while disabled does not fire it)."""
    runtime().triggers.enable(name)
    console.print(f"Enabled trigger {name}.")


def disable(name: NameArg) -> None:
    """Stop evaluating a trigger."""
    runtime().triggers.disable(name)
    console.print(f"Disabled trigger {name}.")


def fire(
    name: NameArg,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the firing).")] = None,
    launch: LaunchOpt = "subprocess",
    as_json: JsonOpt = False,
) -> None:
    """Fire a trigger by hand: its pipeline is launched like any firing."""
    f = runtime().triggers.fire(name, reason=reason, launcher=launch)
    if as_json:
        emit_json(f.to_dict())
    else:
        console.print(_firing_line(f), highlight=False)
    if f.status == "launch_failed":
        raise typer.Exit(1)


def firings(
    name: Annotated[str | None, typer.Argument(help="Only this trigger's firings.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Firings, newest first: cause, reason, the run launched and its status."""
    found = runtime().triggers.firings(name, limit=limit)
    if as_json:
        emit_json([f.to_dict() for f in found])
        return
    if not found:
        console.print("No firings.")
        return
    rows = [
        [
            fmt_time(f.fired_at),
            f.trigger,
            f.cause,
            f.run_id,
            f.status,
            f.reason + (f" ({f.error})" if f.error else ""),
        ]
        for f in found
    ]
    table, _ = fit_table(
        ["fired (UTC)", "trigger", "cause", "run", "status", Col("reason", wrap=True)], rows
    )
    console.print(table)


app.command()(add)
app.command("list")(list_)
app.command()(show)
app.command()(remove)
app.command()(enable)
app.command()(disable)
app.command()(fire)
app.command()(firings)
