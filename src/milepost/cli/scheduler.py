"""`milepost scheduler`: fire triggers and run the periodic work, one active at a time.

Run several for availability: a lease in the metadata store makes exactly one active;
the others stand by and one takes over within the lease plus an interval when it dies
(see :mod:`milepost.pipelines.scheduler`). SIGTERM and Ctrl-C stop it cleanly and release
the lease so another takes over at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import console, emit_json, fmt_time
from milepost.cli._runtime import runtime

if TYPE_CHECKING:
    from milepost.pipelines.scheduler import TickReport


def scheduler(
    interval: Annotated[
        float, typer.Option(min=0.05, max=3600, help="Seconds between ticks (at most lease/3).")
    ] = 5.0,
    lease: Annotated[
        float, typer.Option(min=0.1, max=3600, help="Seconds a lease lasts without renewal.")
    ] = 15.0,
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit (for cron).")] = False,
    launch: Annotated[
        str,
        typer.Option(
            help="subprocess: each firing starts `milepost pipelines run` detached; inline: "
            "runs it in this process, to the end."
        ),
    ] = "subprocess",
    status: Annotated[
        bool, typer.Option("--status", help="Print who holds the lease, then exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Evaluate triggers and launch their pipelines; run due monitors, reap stale runs and
    step canaries whose controller is gone. Prints one line per action."""
    from milepost.pipelines.scheduler import read_lease

    rt = runtime()
    if status:
        from milepost.cli.triggers import _lease_line

        found = read_lease(rt.db)
        if as_json:
            emit_json(found.to_dict() if found else None)
        else:
            console.print(_lease_line(found, rt.triggers.clock()))
        return
    sched = rt.scheduler(lease_seconds=lease, launch=launch)
    last_standby: list[str] = []

    def show(report: TickReport) -> None:
        if as_json:
            emit_json(report.to_dict())
            sys.stdout.flush()
            return
        lines = report.lines()
        if not report.active:
            holder = report.lease.holder
            if last_standby == [holder]:
                return  # say it once per holder, not every interval
            last_standby[:] = [holder]
        else:
            last_standby.clear()
        for line in lines:
            console.print(f"{fmt_time(report.at)} {escape(line)}", highlight=False)
        sys.stdout.flush()  # a log file sees each tick's lines as they happen

    if once:
        report = sched.tick()
        show(report)
        if report.active and not report.lines() and not as_json:
            console.print("Nothing was due.")
        if report.active:
            from milepost.pipelines.scheduler import release_lease

            release_lease(rt.db, sched.holder)
        return
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    console.print(
        f"Scheduler {sched.holder}: ticking every {interval:g} s (lease {lease:g} s); "
        "Ctrl-C to stop.",
        highlight=False,
    )
    sys.stdout.flush()
    try:
        sched.serve(interval, stop, on_tick=show)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    console.print(f"Scheduler {sched.holder} stopped; lease released.", highlight=False)
