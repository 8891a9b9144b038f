"""`milepost monitor ...`: create, list, show, update, run, watch, alerts, ack, delete.

A monitor computes checks (feature_drift, prediction_drift, performance, skew) on an
endpoint's prediction log over a window, on a schedule, and alerts when a metric crosses
its threshold (see :mod:`milepost.monitoring.service`). Times print in UTC.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._params import MAX_INT64
from milepost.cli._runtime import runtime
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost.monitoring.monitors import Alert, Monitor, MonitorResult, MonitorRun

app = typer.Typer(
    help="Monitors: drift, performance and skew checks on an endpoint's predictions over a "
    "window, on a schedule, with thresholds and alerts (log line, webhook).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Monitor name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _thresholds(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise InvalidInput(
                f"--threshold {item!r} is not METRIC=NUMBER.",
                hint="For example --threshold psi=0.2 --threshold accuracy=0.8.",
            ) from None
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _target(mon: Monitor) -> str:
    version = f"{mon.model} v{mon.version}" if mon.model else ""
    if mon.endpoint and version:
        return f"{mon.endpoint} ({version})"
    return mon.endpoint or version


def _results_table(results: list[MonitorResult]) -> None:
    """One table per check (metric, feature, value, threshold, breached, rows, status)."""
    cols: list[Col | str] = ["metric", "feature", Col("value", justify="right")]
    cols += [Col("threshold", justify="right"), "breached", Col("rows", justify="right")]
    for kind in dict.fromkeys(r.check for r in results):
        rows = [
            [
                r.metric,
                r.feature or "-",
                _num(r.value),
                _num(r.threshold),
                "[red]yes[/]" if r.breached else "no",
                f"{r.rows:,}",
                r.status,
            ]
            for r in results
            if r.check == kind
        ]
        table, _ = fit_table([*cols, "status"], rows, optional=2)
        console.print(f"[bold]{kind}[/]")
        console.print(table)
    notes = dict.fromkeys(
        f"{r.check}{'' if r.metric in ('rows', 'error') else ' ' + r.metric}"
        + (f"[{r.feature}]" if r.feature else "")
        + f": {r.status}: "
        + str(r.details.get("error") or r.details.get("reason") or r.details.get("detail"))
        + (f" ({r.details['hint']})" if r.details.get("hint") else "")
        for r in results
        if r.status in ("empty", "no_reference", "error")
        and any(k in r.details for k in ("error", "reason", "detail"))
    )
    for note in list(notes)[:10]:
        console.print(f"  note: {escape(note)}")


def _alert_lines(alerts: list[Alert]) -> None:
    for a in alerts:
        delivered = {None: "", True: " · webhook delivered"}.get(
            a.delivered, f" · webhook failed: {a.delivery_error}"
        )
        ack = f" · acknowledged by {a.acknowledged_by}" if a.acknowledged_by else ""
        console.print(
            f"  [red]alert {a.alert_id}[/] {fmt_time(a.raised_at)} {escape(a.message)}"
            f"{escape(delivered)}{escape(ack)}"
        )


def _print_run(run: MonitorRun, mon: Monitor) -> None:
    start = fmt_time(run.window_start) if run.window_start is not None else "-"
    console.print(
        f"[bold]{run.monitor}[/] on {escape(_target(mon))} · window {mon.window} "
        f"({start} to {fmt_time(run.window_end)} UTC) · {run.rows:,} rows · {run.status}"
    )
    _results_table(run.results)
    if run.alerts:
        console.print(f"{len(run.alerts)} alert(s):")
        _alert_lines(run.alerts)
    else:
        console.print("No alerts.")


def create(
    name: NameArg,
    endpoint: Annotated[
        str | None, typer.Option(help="Endpoint whose predictions to check.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Only this model's rows (with --version).")
    ] = None,
    version: Annotated[
        int | None, typer.Option(min=1, max=MAX_INT64, help="Model version.")
    ] = None,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check",
            help="feature_drift (default), prediction_drift, performance or skew; repeatable.",
        ),
    ] = None,
    window: Annotated[
        str, typer.Option(help='Time window ("30m", "1h", "7d") or "last 1000" predictions.')
    ] = "1h",
    schedule: Annotated[
        str | None,
        typer.Option(help='Cron in UTC ("*/5 * * * *") or "every 10m"; none: run by hand.'),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="METRIC=NUMBER, e.g. psi=0.2, ks=0.05 (p-value), accuracy=0.8; repeatable.",
        ),
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="URL that alerts are POSTed to.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a monitor on an endpoint (or a model version's rows of it)."""
    mon = runtime().monitors.create(
        name,
        endpoint=endpoint,
        model=model,
        version=version,
        checks=check or ["feature_drift"],
        window=window,
        schedule=schedule,
        thresholds=_thresholds(threshold or []),
        webhook=webhook,
    )
    if as_json:
        emit_json(mon.to_dict())
        return
    when = f"next run {fmt_time(mon.next_run_at)} UTC" if mon.next_run_at else "run by hand"
    console.print(
        f"Created monitor {mon.name} on {escape(_target(mon))}: {', '.join(mon.checks)} over "
        f"{mon.window} · {when}"
    )


def update(
    name: NameArg,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Replace the checks; repeatable.")
    ] = None,
    window: Annotated[str | None, typer.Option(help='New window ("1h", "last 1000").')] = None,
    schedule: Annotated[
        str | None, typer.Option(help='New schedule (cron in UTC or "every 10m").')
    ] = None,
    no_schedule: Annotated[
        bool, typer.Option("--no-schedule", help="Run by hand only from now on.")
    ] = False,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="Replace the thresholds: METRIC=NUMBER; repeatable."),
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="New webhook URL.")] = None,
    no_webhook: Annotated[bool, typer.Option("--no-webhook", help="Remove the webhook.")] = False,
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Resume or pause scheduled runs."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a monitor (audited); options left out keep their value."""
    if schedule is not None and no_schedule:
        raise InvalidInput("--schedule and --no-schedule contradict each other.", hint="Pick one.")
    if webhook is not None and no_webhook:
        raise InvalidInput("--webhook and --no-webhook contradict each other.", hint="Pick one.")
    changes: dict[str, Any] = {}
    if schedule is not None or no_schedule:
        changes["schedule"] = schedule
    if webhook is not None or no_webhook:
        changes["webhook"] = webhook
    mon = runtime().monitors.update(
        name,
        checks=check or None,
        window=window,
        thresholds=_thresholds(threshold) if threshold else None,
        enabled=enabled,
        **changes,
    )
    if as_json:
        emit_json(mon.to_dict())
        return
    nxt = fmt_time(mon.next_run_at) + " UTC" if mon.next_run_at else "none"
    state = "enabled" if mon.enabled else "disabled"
    console.print(
        f"Updated monitor {mon.name}: {', '.join(mon.checks)} over {mon.window} · "
        f"schedule {escape(mon.schedule or '-')} · {state} · next run {nxt}"
    )


def run(
    name: NameArg,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Also write the run's report here: PATH.html (self-contained) and PATH.json.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a monitor once now: store its results, raise and deliver its alerts. Exit code 0
    whether or not a threshold was crossed (the alerts are listed)."""
    monitors = runtime().monitors
    result = monitors.run(name)
    written = monitors.write_report(report, result) if report is not None else None
    if as_json:
        emit_json(result.to_dict())
        return
    _print_run(result, monitors.get(name))
    if written is not None:
        console.print(f"Report: {escape(str(written[0]))} (and {escape(written[1].name)})")


def list_(as_json: JsonOpt = False) -> None:
    """List monitors: target, checks, window, schedule, last and next run."""
    mons = runtime().monitors.list()
    if as_json:
        emit_json([m.to_dict() for m in mons])
        return
    if not mons:
        console.print("No monitors. Create one with `milepost monitor create`.")
        return
    rows = [
        [
            m.name,
            _target(m),
            m.window,
            m.schedule or "-",
            fmt_time(m.next_run_at) if m.enabled else "disabled",
            ", ".join(m.checks),
            fmt_time(m.last_run_at),
        ]
        for m in mons
    ]
    cols: list[Col | str] = ["monitor", "target", "window", "schedule", "next run (UTC)"]
    table, _ = fit_table([*cols, Col("checks", wrap=True), "last run (UTC)"], rows, optional=2)
    console.print(table)


def show(
    name: NameArg,
    alerts: Annotated[int, typer.Option(min=0, max=1000, help="Recent alerts to list.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """A monitor's definition, next run, latest run's results and recent alerts."""
    monitors = runtime().monitors
    mon = monitors.get(name)
    results = monitors.results(name, limit=1000)
    latest = [r for r in results if results and r.run_id == results[-1].run_id]
    recent = monitors.alerts(name, limit=alerts) if alerts else []
    if as_json:
        emit_json(
            {
                "monitor": mon.to_dict(),
                "latest": [r.to_dict() for r in latest],
                "alerts": [a.to_dict() for a in recent],
            }
        )
        return
    limits = ", ".join(f"{k}={v:g}" for k, v in mon.thresholds.items()) or "defaults"
    console.print(
        f"[bold]{mon.name}[/] on {escape(_target(mon))} · {', '.join(mon.checks)} · window "
        f"{mon.window} · thresholds {escape(limits)}"
    )
    schedule = mon.schedule or "none (run by hand)"
    nxt = fmt_time(mon.next_run_at) if mon.enabled else "disabled"
    console.print(
        f"schedule {escape(schedule)} · next run {nxt} UTC · webhook {mon.webhook or '-'}"
    )
    if latest:
        console.print(f"Latest run {fmt_time(latest[0].run_at)} UTC:")
        _results_table(latest)
    else:
        console.print("Not run yet.")
    if recent:
        console.print(f"Recent alerts ({len(recent)}):")
        _alert_lines(recent)
    else:
        console.print("No alerts.")


def watch(
    interval: Annotated[
        float, typer.Option(min=0.5, max=3600, help="Seconds between schedule checks.")
    ] = 10.0,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due now, then exit (for cron).")
    ] = False,
) -> None:
    """Run monitors on their schedules until Ctrl-C. Each schedule slot runs once, even
    with several watchers (or the pipelines scheduler) at the same time; slots missed while
    nobody watched run once."""
    from rich.live import Live

    monitors = runtime().monitors
    if once:
        for r in monitors.run_due():
            console.print(f"{r.monitor}: {r.status} · {r.rows:,} rows · {len(r.alerts)} alert(s)")
            _alert_lines(r.alerts)
        return
    stop = threading.Event()
    runs = alerts = 0
    try:
        with Live(console=console, refresh_per_second=2, transient=True) as live:
            while not stop.is_set():
                for r in monitors.run_due():
                    runs += 1
                    alerts += len(r.alerts)
                    live.console.print(
                        f"{fmt_time(r.run_at)} {r.monitor}: {r.status} · {r.rows:,} rows · "
                        f"{len(r.alerts)} alert(s)"
                    )
                pending = [m for m in monitors.list() if m.enabled and m.next_run_at]
                nxt = min(pending, key=lambda m: m.next_run_at or 0, default=None)
                line = f"watching {len(pending)} scheduled monitor(s) · {runs} run(s), "
                line += f"{alerts} alert(s)"
                if nxt is not None:
                    line += f" · next: {nxt.name} at {fmt_time(nxt.next_run_at)} UTC"
                live.update(escape(line + " · Ctrl-C to stop"))
                stop.wait(interval)
    except KeyboardInterrupt:
        pass
    console.print(f"Stopped watching: {runs} run(s), {alerts} alert(s).")


def alerts(
    monitor: Annotated[str | None, typer.Option(help="Only this monitor's alerts.")] = None,
    unacknowledged: Annotated[
        bool, typer.Option("--unacknowledged", help="Only alerts nobody acknowledged.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Alerts, newest first."""
    found = runtime().monitors.alerts(
        monitor, acknowledged=False if unacknowledged else None, limit=limit
    )
    if as_json:
        emit_json([a.to_dict() for a in found])
        return
    if not found:
        console.print("No alerts.")
        return
    rows = [
        [
            str(a.alert_id),
            fmt_time(a.raised_at),
            a.metric,
            a.feature or "-",
            _num(a.value),
            _num(a.threshold),
            a.monitor,
            {None: "-", True: "yes", False: "failed"}[a.delivered],
            a.acknowledged_by or "-",
        ]
        for a in found
    ]
    cols: list[Col | str] = ["id", "raised (UTC)", "metric", "feature"]
    cols += [Col("value", justify="right"), Col("threshold", justify="right")]
    table, _ = fit_table([*cols, "monitor", "webhook", "acknowledged by"], rows, optional=3)
    console.print(table)


def ack(
    alert_id: Annotated[
        int, typer.Argument(min=1, max=MAX_INT64, help="Alert id (`monitor alerts`).")
    ],
) -> None:
    """Acknowledge an alert (records who and when)."""
    a = runtime().monitors.acknowledge(alert_id)
    when = fmt_time(a.acknowledged_at)
    console.print(f"Alert {a.alert_id} acknowledged by {a.acknowledged_by} at {when} UTC.")


def delete(
    name: NameArg,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the audit trail).")] = None,
) -> None:
    """Delete a monitor with its results and alerts (audited)."""
    runtime().monitors.delete(name, reason=reason)
    console.print(f"Deleted monitor {name}.")


app.command()(create)
app.command("list")(list_)
app.command()(show)
app.command()(update)
app.command()(run)
app.command()(watch)
app.command()(alerts)
app.command()(ack)
app.command()(delete)
